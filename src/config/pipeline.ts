import { z } from 'zod';
import { Duration, DurationText } from '../domain/index.js';

/** An image build declared by a pipeline. Tags may use {{branch}} and {{shortCommit}}. */
export const BuildSpec = z.strictObject({
  /** Build context, relative to the repository root. @default '.' */
  context: z.string().min(1).default('.'),
  /** Relative to the context. @default 'Dockerfile' */
  dockerfile: z.string().min(1).default('Dockerfile'),
  /** Repository name without registry, e.g. `team/app`. */
  image: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'expected a lower-case repository name such as team/app'),
  /** @default ['{{branch}}', '{{shortCommit}}'] */
  tags: z.array(z.string().min(1)).min(1).default(['{{branch}}', '{{shortCommit}}']),
  args: z.record(z.string(), z.string()).default({}),
  /** @default 'buildah' */
  tool: z.enum(['buildah', 'podman', 'docker']).default('buildah'),
  /** A registry repository used as a layer cache (`--cache-from/--cache-to`). */
  cacheRepo: z.string().min(1).optional(),
});
export type BuildSpec = z.infer<typeof BuildSpec>;

/** Runs the freshly pushed image when the registry watcher sees it (the local loop). */
export const DeploySpec = z.strictObject({
  command: z.array(z.string().min(1)).min(1),
  /** @default the build's image */
  image: z.string().min(1).optional(),
  timeout: DurationText.default(Duration.parse('10m')),
});
export type DeploySpec = z.infer<typeof DeploySpec>;

/** Settings for the Kubernetes executor. */
export const KubernetesSpec = z.strictObject({
  /** @default 'kaniko' */
  builder: z.enum(['kaniko', 'makisu', 'buildah']).default('kaniko'),
  /** A template file for the builder Job; @default templates/builder-<builder>.yaml */
  template: z.string().min(1).optional(),
  storageClass: z.string().min(1).optional(),
  /** @default '1Gi' */
  sourceSize: z.string().regex(/^\d+(Ki|Mi|Gi|Ti)?$/, 'expected a quantity such as 1Gi').default('1Gi'),
  /** Largest source tree accepted for copying, in bytes. @default 512 MiB */
  maxSourceBytes: z.number().int().positive().default(512 * 1024 * 1024),
  /** Keep namespaces of failed runs this long. @default 24h */
  keepFailed: DurationText.default(Duration.parse('24h')),
  /** Keep every run namespace (for debugging). @default false */
  debug: z.boolean().default(false),
  /** Address of the Makisu Redis layer cache, e.g. `keelson-redis.keelson:6379`. */
  redisCacheAddr: z.string().min(1).optional(),
  /**
   * Image of the copy pod (needs sh, head, sha256sum and tar), e.g. a mirror at
   * `localhost:32000/busybox:1.36`. Operator-only. @default 'busybox:1.36'
   */
  copyImage: z.string().min(1).optional(),
  /**
   * Image of the builder Job's containers (`{{BuilderImage}}` in the builder templates).
   * Operator-only. @default per builder: see DEFAULT_BUILDER_IMAGES
   */
  builderImage: z.string().min(1).optional(),
});
export type KubernetesSpec = z.infer<typeof KubernetesSpec>;

/** What a run does, from `--step` flags or the `pipeline:` section of keelson.yaml. */
export const PipelineSpec = z.strictObject({
  steps: z.array(z.string().min(1)).default([]),
  /** Per-run timeout. @default 30m */
  timeout: DurationText.default(Duration.parse('30m')),
  env: z.record(z.string(), z.string()).default({}),
  build: BuildSpec.optional(),
  deploy: DeploySpec.optional(),
  kubernetes: KubernetesSpec.default(KubernetesSpec.parse({})),
});
export type PipelineSpec = z.infer<typeof PipelineSpec>;

export { DurationText };
