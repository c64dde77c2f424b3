import { z } from 'zod';
import { ReportConfig } from '../report/index.js';
import { PipelineSpec } from './pipeline.js';
import { loadYamlFile, parseYamlWith } from './load.js';

/** One watched repository in a config file. */
export const WatchEntry = z.union([
  z.string().min(1).transform((repo) => ({ repo, schedule: undefined as string | undefined })),
  z.strictObject({ repo: z.string().min(1), schedule: z.string().min(1).optional() }),
]);

/**
 * keelson.yaml: the pipeline at the top level (`steps:`, `build:`, `deploy:`, `timeout:`, `env:`,
 * `kubernetes:`), plus where and how to run it. Unknown keys are errors, so a typo is caught.
 */
export const KeelsonFile = PipelineSpec.extend({
  watches: z.array(WatchEntry).default([]),
  /** @default '@every 30s' */
  schedule: z.string().min(1).optional(),
  executor: z.enum(['local', 'kubernetes']).optional(),
  registry: z.string().min(1).optional(),
  registryConfig: z.string().min(1).optional(),
  stateDir: z.string().min(1).optional(),
  redis: z.string().min(1).optional(),
  template: z.string().min(1).optional(),
  /** Daemon HTTP server. */
  server: z.strictObject({
    /** @default 8080 */
    port: z.number().int().min(0).max(65535).default(8080),
    /** @default '0.0.0.0' */
    host: z.string().min(1).default('0.0.0.0'),
    /** File holding the GitHub webhook secret (HMAC-SHA256). */
    githubSecretFile: z.string().min(1).optional(),
    /** File holding the token /webhooks/registry requires (Bearer/Token header or ?token=). */
    registryTokenFile: z.string().min(1).optional(),
  }).optional(),
  /** Where people reach the status page; commit statuses and notifications link to runs there. */
  publicUrl: z.url().optional(),
  /** Commit statuses and notifications. Operator-only: a repository's keelson.yaml cannot name
   * token files or endpoints, so a commit cannot send a token file anywhere. */
  report: ReportConfig.optional(),
  /** Rollout controller settings for the daemon. */
  rollouts: z.strictObject({
    enabled: z.boolean().default(true),
    namespaces: z.array(z.string().min(1)).default([]),
  }).optional(),
});
export type KeelsonFile = z.infer<typeof KeelsonFile>;

export function loadKeelsonFile(file: string): Promise<KeelsonFile> {
  return loadYamlFile(KeelsonFile, file);
}

/**
 * A repository's own keelson.yaml: the pipeline keys, except `deploy:`. Deploying runs the built
 * image on the operator's machine with the operator's registry credentials, so only the operator's
 * config may ask for it; a committed one is refused, never silently ignored.
 */
export const RepositoryPipeline = PipelineSpec.extend({
  deploy: z.unknown().refine(() => false, {
    error: "is operator-only (it runs the built image on the operator's machine): declare it in the operator's --config, not in the repository",
  }).optional(),
});

/** The pipeline a repository carries in its own committed tree (`keelson.yaml`). Only the
 * pipeline keys are allowed there: where to run is the operator's choice, not the repo's. */
export function parseRepositoryPipeline(text: string, file: string): PipelineSpec {
  const { deploy: _refused, ...pipeline } = parseYamlWith(RepositoryPipeline, text, file);
  return pipeline;
}
