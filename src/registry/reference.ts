import { InputError } from '../errors.js';

/** Docker Hub's canonical name; `index.docker.io` and no host at all mean the same registry. */
export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's distribution API actually answers. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/** A repository in a registry: `127.0.0.1:5000` + `team/app`, `docker.io` + `library/nginx`. */
export interface RepositoryRef {
  /** host[:port], Docker Hub normalised to `docker.io` */
  readonly registry: string;
  /** path inside the registry, `library/` added for single-name Docker Hub images */
  readonly repository: string;
}

export interface ImageReference extends RepositoryRef {
  readonly tag?: string;
  /** `sha256:<hex>` */
  readonly digest?: string;
}

// The grammar of github.com/distribution/reference (reference.go), anchored per part.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z][a-z0-9]*(?:[-_+.][a-z][a-z0-9]*)*:[0-9a-f]{32,}$/i;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d+)?$/;

/** `docker.io` for every alias of Docker Hub, the host itself otherwise. */
export function normalizeRegistryHost(host: string): string {
  const lower = host.toLowerCase();
  return lower === 'index.docker.io' || lower === 'registry-1.docker.io' || lower === 'docker.io' ? DOCKER_HUB : host;
}

/**
 * Parses `[host[:port]/]path[:tag][@digest]` the way docker does: the first component is a host
 * only when it has a `.` or `:` or is `localhost`; no host means Docker Hub, where a single name
 * gets `library/`. Bad input is an InputError naming the reference and the part that is wrong.
 */
export function parseImageReference(text: string): ImageReference {
  const fail = (detail: string): never => { throw new InputError(`image reference "${text}"`, detail); };
  if (text.trim() !== text || text === '') fail('expected [host[:port]/]name[:tag][@digest] without spaces');

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`digest "${digest}" is not ALGORITHM:HEX (e.g. sha256:<64 hex digits>)`);
  }

  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!HOST.test(first)) fail(`registry host "${first}" is not host[:port]`);
      registry = normalizeRegistryHost(first);
      rest = rest.slice(slash + 1);
    }
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`tag "${tag}" must be 1-128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
  }

  if (rest === '') fail('missing repository name');
  for (const component of rest.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      fail(`repository path component "${component}" must be lowercase letters and digits separated by ".", "_", "__" or "-"`);
    }
  }
  if (rest.length > 255) fail('repository name is longer than 255 characters');
  const repository = registry === DOCKER_HUB && !rest.includes('/') ? `library/${rest}` : rest;
  return { registry, repository, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** The full form: `host/repository[:tag][@digest]` (docker.io written out, `library/` kept). */
export function formatImageReference(reference: ImageReference): string {
  return `${reference.registry}/${reference.repository}` +
    (reference.tag ? `:${reference.tag}` : '') + (reference.digest ? `@${reference.digest}` : '');
}

/** True for hosts docker talks plain HTTP to without being told: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  let name = host;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) name = bracket[1]!;
  else if ((host.match(/:/g) ?? []).length === 1) name = host.slice(0, host.indexOf(':'));
  name = name.toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
