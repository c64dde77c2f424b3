import { readFile } from 'node:fs/promises';
import type { V1Job, V1Secret } from '@kubernetes/client-node';
import type { CredentialLookup } from '../../registry/index.js';
import { toDockerConfigJson } from '../../registry/index.js';
import { renderTemplate, templateValuesFor, type TemplateValues } from '../../template/index.js';
import type { ExecutionRequest } from '../types.js';
import { REGISTRY_SECRET } from './naming.js';

/** What the builder Job template is rendered for. */
export interface BuilderInput {
  readonly request: ExecutionRequest;
  readonly namespace: string;
  /** Every destination, `host/name:tag`; the first is `Image`. */
  readonly images: readonly string[];
  readonly credentials: CredentialLookup;
  /** The operator's builder image; @default DEFAULT_BUILDER_IMAGES[builder] */
  readonly builderImage?: string;
}

/**
 * The image each stock builder template runs (`{{BuilderImage}}`) unless the operator names
 * another (`kubernetes.builderImage`), e.g. a copy in a local registry such as localhost:32000.
 */
export const DEFAULT_BUILDER_IMAGES = {
  kaniko: 'gcr.io/kaniko-project/executor:v1.23.2',
  makisu: 'gcr.io/uber-container-tools/makisu:v0.1.14',
  buildah: 'quay.io/buildah/stable:v1.38',
} as const;

/**
 * The template values of a builder Job: the stencil values (`Image`, `Registry`, `Namespace`,
 * `ID`, `Commit`, `Branch`, `URL`, `duat.*`) plus what the builder templates need: `Images` (every
 * destination), `ImagePath` (`Image` without the registry), `Context`, `Dockerfile`, `BuildArgs` (`K=V` strings), `CacheRepo` (a full
 * repository, '' for none), `RedisCacheAddr` ('' for none), `RegistryInsecure` (plain HTTP) and
 * `RegistrySecret` (the Secret with `config.json` and `makisu.json`, never its content) and
 * `BuilderImage`.
 */
export function builderValues(input: BuilderInput): TemplateValues {
  const { request, namespace, images, credentials } = input;
  const build = request.pipeline.build!;
  const registry = request.registry ?? '';
  // `team/app-cache` lives on the run's registry; `host:5000/team/app-cache` names its own.
  const cacheRepo = !build.cacheRepo ? '' : hasHost(build.cacheRepo) || !registry ? build.cacheRepo : `${registry}/${build.cacheRepo}`;
  return {
    ...templateValuesFor({
      commit: request.source.commit,
      branch: request.source.branch,
      url: request.source.repo,
      runId: request.runId,
      namespace,
      image: images[0]!,
      registry,
    }),
    Images: [...images],
    ImagePath: registry && images[0]!.startsWith(`${registry}/`) ? images[0]!.slice(registry.length + 1) : images[0]!,
    Context: build.context,
    Dockerfile: build.dockerfile,
    BuildArgs: Object.entries(build.args).map(([key, value]) => `${key}=${value}`),
    CacheRepo: cacheRepo,
    RedisCacheAddr: request.pipeline.kubernetes.redisCacheAddr ?? '',
    RegistryInsecure: registry !== '' && credentials.isInsecure(registry),
    RegistrySecret: REGISTRY_SECRET,
    BuilderImage: input.builderImage ?? DEFAULT_BUILDER_IMAGES[request.pipeline.kubernetes.builder],
  };
}

function hasHost(repository: string): boolean {
  const first = repository.split('/')[0]!;
  return repository.includes('/') && (/[.:]/.test(first) || first === 'localhost');
}

/** Where a builder template comes from: keelson's own, the operator's, or the repository's committed tree. */
export type TemplateOrigin = 'builtIn' | 'operator' | 'repository';

/**
 * Renders the template and returns its one Job (other documents are refused: the run owns only a
 * Job). A repository's template is rendered with no environment at all: its `expandenv` and
 * `Env.*` see nothing of keelson's process, where the operator's tokens live.
 */
export async function renderBuilderJob(templateFile: string, values: TemplateValues, origin: TemplateOrigin): Promise<V1Job> {
  const rendered = renderTemplate(await readFile(templateFile, 'utf8'), values, {
    templateName: templateFile,
    syntax: origin === 'builtIn' ? 'handlebars' : 'auto',
    ...(origin === 'repository' ? { env: {} } : {}),
  });
  const jobs = rendered.documents.filter((d) => d.kind === 'Job');
  if (jobs.length !== 1 || rendered.documents.length !== 1) {
    throw new BuilderTemplateError(templateFile, `expected exactly one document, a Job; found ${rendered.documents.map((d) => String(d.kind)).join(', ') || 'none'}`);
  }
  return jobs[0] as V1Job;
}

export class BuilderTemplateError extends Error {
  constructor(readonly template: string, detail: string) {
    super(`${template}: ${detail}`);
  }
}

/**
 * The registry credentials for the builder, as a Secret in the run namespace: `config.json`
 * (docker config: kaniko, buildah) and `makisu.json` (Makisu's `--registry-config`). They reach
 * the builder only as a mounted file, never a command line or an environment variable.
 */
export function registrySecret(credentials: CredentialLookup, labels: Record<string, string>, registry: string | undefined): V1Secret {
  const makisu: Record<string, Record<string, unknown>> = {};
  for (const [host, { username, password }] of credentials.dockerAuths()) {
    makisu[host] = { '.*': { security: { tls: { client: { disabled: credentials.isInsecure(host) } }, basic: { username, password } } } };
  }
  if (registry && !makisu[registry] && credentials.isInsecure(registry)) {
    makisu[registry] = { '.*': { security: { tls: { client: { disabled: true } } } } };
  }
  return {
    metadata: { name: REGISTRY_SECRET, labels },
    type: 'Opaque',
    stringData: {
      'config.json': toDockerConfigJson(credentials),
      'makisu.json': `${JSON.stringify(makisu, null, 2)}\n`,
    },
  };
}
