import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../errors.js';
import { registerSecret } from '../log/index.js';
import { DOCKER_HUB, isLoopbackHost, normalizeRegistryHost } from './reference.js';
import { DockerConfig, DockerConfigSecret, RegistryConfigFile } from './schema.js';
import type { CredentialLookup, Credentials } from './types.js';

/** One `<host>: { <pattern>: ... }` entry of a Makisu registry config, in file order. */
export interface RegistryConfigEntry {
  readonly host: string;
  /** The pattern as written, for messages */
  readonly pattern: string;
  readonly regex: RegExp;
  readonly insecure: boolean;
  readonly credentials?: Credentials;
}

/**
 * The Makisu-style registry config (registry/registry-template.yaml). As in Makisu, a pattern
 * matches when the regex is found anywhere in the repository name (write `^team/.*$` to anchor
 * it); the first matching entry in file order wins.
 */
export class RegistryConfig implements CredentialLookup {
  constructor(readonly entries: readonly RegistryConfigEntry[]) {}

  credentialsFor(host: string, repository: string): Credentials | undefined {
    const wanted = normalizeRegistryHost(host);
    for (const entry of this.entries) {
      if (entry.host === wanted && entry.credentials && entry.regex.test(repository)) return entry.credentials;
    }
    return undefined;
  }

  isInsecure(host: string): boolean {
    const wanted = normalizeRegistryHost(host);
    return this.entries.some((entry) => entry.host === wanted && entry.insecure);
  }

  dockerAuths(): ReadonlyMap<string, Credentials> {
    const auths = new Map<string, Credentials>();
    for (const entry of this.entries) {
      if (entry.credentials && !auths.has(entry.host)) auths.set(entry.host, entry.credentials);
    }
    return auths;
  }
}

function formatIssues(file: string, issues: readonly z.core.$ZodIssue[], describe: (path: readonly PropertyKey[]) => string): InputError {
  const problems = issues.map((issue) => {
    const where = describe(issue.path);
    return where ? `${where}: ${issue.message}` : issue.message;
  });
  return new InputError(file, problems.join('; '));
}

/** `127.0.0.1:5000 → "team/.*" → security.basic.username`: host and pattern keys contain dots. */
function registryConfigPath(path: readonly PropertyKey[]): string {
  const [host, pattern, ...rest] = path.map(String);
  const parts: string[] = [];
  if (host !== undefined) parts.push(host);
  if (pattern !== undefined) parts.push(JSON.stringify(pattern));
  if (rest.length > 0) parts.push(rest.join('.'));
  return parts.join(' → ');
}

const HOST_KEY = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d+)?$/;

/**
 * Parses a Makisu registry config (YAML or JSON). `file` names it in errors; `password_file`
 * paths are relative to `baseDir` (the config file's folder). Every bad field is reported at
 * once as an InputError (exit 2); every password read is registered as a secret.
 */
export function parseRegistryConfig(text: string, file: string, baseDir: string = process.cwd()): RegistryConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (error) {
    throw new InputError(file, `not valid YAML: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  const result = RegistryConfigFile.safeParse(raw);
  if (!result.success) throw formatIssues(file, result.error.issues, registryConfigPath);

  const problems: string[] = [];
  const entries: RegistryConfigEntry[] = [];
  for (const [host, repositories] of Object.entries(result.data)) {
    if (!HOST_KEY.test(host)) {
      problems.push(`${host}: expected a registry host[:port] such as registry.example.com:5000 (no scheme, no path)`);
      continue;
    }
    for (const [pattern, config] of Object.entries(repositories)) {
      const where = registryConfigPath([host, pattern]);
      let regex: RegExp;
      try {
        regex = new RegExp(pattern);
      } catch (error) {
        problems.push(`${where}: not a valid regular expression (${(error as Error).message})`);
        continue;
      }
      const basic = config.security?.basic;
      let credentials: Credentials | undefined;
      if (basic) {
        let password = basic.password ?? '';
        if (basic.password_file !== undefined) {
          const passwordPath = isAbsolute(basic.password_file) ? basic.password_file : resolve(baseDir, basic.password_file);
          try {
            // one trailing newline is what `echo secret > file` leaves; it is not part of the password
            password = readFileSync(passwordPath, 'utf8').replace(/\r?\n$/, '');
          } catch {
            problems.push(`${where} → security.basic.password_file: cannot read ${passwordPath}`);
            continue;
          }
        }
        registerSecret(password);
        credentials = { username: basic.username, password };
      }
      entries.push({
        host: normalizeRegistryHost(host),
        pattern,
        regex,
        insecure: config.security?.tls?.client?.disabled === true,
        ...(credentials ? { credentials } : {}),
      });
    }
  }
  if (problems.length > 0) throw new InputError(file, problems.join('; '));
  return new RegistryConfig(entries);
}

/** Reads and parses a Makisu registry config file; see parseRegistryConfig. */
export async function loadRegistryConfig(path: string): Promise<RegistryConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(path, 'cannot read the registry config', { cause: error });
  }
  return parseRegistryConfig(text, path, dirname(resolve(path)));
}

/** Credentials per host, from docker config.json or a pull secret. */
export class DockerConfigCredentials implements CredentialLookup {
  constructor(private readonly auths: ReadonlyMap<string, Credentials>) {}

  /** Per host only: docker config.json has no per-repository credentials. */
  credentialsFor(host: string, _repository?: string): Credentials | undefined {
    return this.auths.get(normalizeRegistryHost(host));
  }

  isInsecure(): boolean {
    return false;
  }

  dockerAuths(): ReadonlyMap<string, Credentials> {
    return this.auths;
  }
}

/** `https://index.docker.io/v1/` → docker.io, `http://host:5000/v2` → host:5000. */
function dockerConfigHost(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '');
  return normalizeRegistryHost(host);
}

function dockerAuthsFrom(raw: unknown, where: string): DockerConfigCredentials {
  const result = DockerConfig.safeParse(raw);
  if (!result.success) throw formatIssues(where, result.error.issues, (path) => path.map(String).join('.'));
  const auths = new Map<string, Credentials>();
  const problems: string[] = [];
  for (const [key, entry] of Object.entries(result.data.auths ?? {})) {
    let credentials: Credentials | undefined;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) {
        problems.push(`auths.${key}.auth: expected base64 of "username:password"`);
        continue;
      }
      credentials = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      registerSecret(entry.auth);
    } else if (entry.username !== undefined) {
      credentials = { username: entry.username, password: entry.password ?? '' };
    }
    if (!credentials) continue;
    registerSecret(credentials.password);
    const host = dockerConfigHost(key);
    if (!auths.has(host)) auths.set(host, credentials);
  }
  if (problems.length > 0) throw new InputError(where, problems.join('; '));
  return new DockerConfigCredentials(auths);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(where, `not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** Parses docker's config.json text (`auths` with `auth` or `username`/`password`). */
export function parseDockerConfig(text: string, where: string): DockerConfigCredentials {
  return dockerAuthsFrom(parseJson(text, where), where);
}

export async function loadDockerConfig(path: string): Promise<DockerConfigCredentials> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(path, 'cannot read the docker config', { cause: error });
  }
  return parseDockerConfig(text, path);
}

/**
 * Credentials from a Kubernetes Secret object (as read from the API): type
 * `kubernetes.io/dockerconfigjson` with base64 `.data[".dockerconfigjson"]`, or the legacy
 * `kubernetes.io/dockercfg` whose `.dockercfg` is the `auths` map itself. `where` names the
 * secret in errors (e.g. `secret team/regcred`).
 */
export function dockerConfigFromSecret(secret: unknown, where: string): DockerConfigCredentials {
  const result = DockerConfigSecret.safeParse(secret);
  if (!result.success) throw new InputError(where, 'expected a Secret object with data');
  const { type, data = {}, stringData = {} } = result.data;
  const pick = (key: string): string | undefined =>
    stringData[key] ?? (data[key] === undefined ? undefined : Buffer.from(data[key]!, 'base64').toString('utf8'));
  if (type === 'kubernetes.io/dockercfg') {
    const legacy = pick('.dockercfg');
    if (legacy === undefined) throw new InputError(where, 'secret of type kubernetes.io/dockercfg has no .dockercfg key');
    return dockerAuthsFrom({ auths: parseJson(legacy, `${where} .dockercfg`) }, `${where} .dockercfg`);
  }
  if (type !== undefined && type !== 'kubernetes.io/dockerconfigjson') {
    throw new InputError(where, `secret type is ${type}; expected kubernetes.io/dockerconfigjson`);
  }
  const json = pick('.dockerconfigjson');
  if (json === undefined) throw new InputError(where, 'secret has no .dockerconfigjson key');
  return parseDockerConfig(json, `${where} .dockerconfigjson`);
}

/** No credentials anywhere; only loopback hosts use plain HTTP. */
export const anonymousCredentials: CredentialLookup = {
  credentialsFor: () => undefined,
  isInsecure: () => false,
  dockerAuths: () => new Map(),
};

/** Asks each lookup in order; the first with credentials wins, any one can mark a host insecure. */
export function combineCredentials(...lookups: readonly CredentialLookup[]): CredentialLookup {
  return {
    credentialsFor: (host, repository) => {
      for (const lookup of lookups) {
        const found = lookup.credentialsFor(host, repository);
        if (found) return found;
      }
      return undefined;
    },
    isInsecure: (host) => lookups.some((lookup) => lookup.isInsecure(host)),
    dockerAuths: () => {
      const merged = new Map<string, Credentials>();
      for (const lookup of lookups) {
        for (const [host, credentials] of lookup.dockerAuths()) if (!merged.has(host)) merged.set(host, credentials);
      }
      return merged;
    },
  };
}

/** True when keelson talks plain HTTP to `host`: loopback (as docker does) or marked insecure. */
export function usesPlainHttp(host: string, lookup: CredentialLookup): boolean {
  return isLoopbackHost(host) || lookup.isInsecure(host);
}

/**
 * A docker config.json (`{"auths": {...}}`) for builders that read one (kaniko, buildah
 * `--authfile`). Docker Hub is written under `https://index.docker.io/v1/`, the key those tools
 * look up. The result holds passwords: write it with mode 0600 and never log it.
 */
export function toDockerConfigJson(source: Pick<CredentialLookup, 'dockerAuths'>): string {
  const auths: Record<string, { username: string; password: string; auth: string }> = {};
  for (const [host, { username, password }] of source.dockerAuths()) {
    const key = host === DOCKER_HUB ? 'https://index.docker.io/v1/' : host;
    const auth = Buffer.from(`${username}:${password}`).toString('base64');
    registerSecret(auth);
    auths[key] = { username, password, auth };
  }
  return `${JSON.stringify({ auths }, null, 2)}\n`;
}
