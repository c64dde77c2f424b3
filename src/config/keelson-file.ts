import { z } from 'zod';
import { InputError } from '../errors.js';
import { parseSchedule } from '../git/index.js';
import { ReportConfig } from '../report/index.js';
import { KubernetesSpec, PipelineSpec } from './pipeline.js';
import { loadYamlFile, parseYamlWith } from './load.js';

/**
 * What a builder Job may ask for when the pipeline (or its template) comes from the repository's
 * own keelson.yaml. None by default: a commit cannot give itself the host.
 */
export const BuilderPrivilege = z.enum(['privileged', 'hostNamespaces', 'hostPath', 'capabilities', 'serviceAccount']);
export type BuilderPrivilege = z.infer<typeof BuilderPrivilege>;

/**
 * A poll schedule (`@every 30s`, a cron expression), checked here so that a bad one is reported
 * with the config file, line and key rather than as the --schedule flag the user never gave.
 */
const ScheduleText = z.string().min(1).superRefine((text, ctx) => {
  try {
    parseSchedule(text, 'schedule').dispose();
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message.slice(`${error.where}: `.length) });
  }
});

/** One watched repository in a config file. */
export const WatchEntry = z.union([
  z.string().min(1).transform((repo) => ({ repo, schedule: undefined as string | undefined, allowBuilder: [] as BuilderPrivilege[] })),
  z.strictObject({
    repo: z.string().min(1),
    schedule: ScheduleText.optional(),
    /** Privileges this repository's own builder Job may use. @default none */
    allowBuilder: z.array(BuilderPrivilege).default([]),
  }),
]);

/** An environment variable name, as POSIX shells accept it. */
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as NPM_TOKEN');

/**
 * keelson.yaml: the pipeline at the top level (`steps:`, `build:`, `deploy:`, `timeout:`, `env:`,
 * `kubernetes:`), plus where and how to run it. Unknown keys are errors, so a typo is caught.
 */
export const KeelsonFile = PipelineSpec.extend({
  watches: z.array(WatchEntry).default([]),
  /** @default '@every 30s' */
  schedule: ScheduleText.optional(),
  executor: z.enum(['local', 'kubernetes']).optional(),
  registry: z.string().min(1).optional(),
  registryConfig: z.string().min(1).optional(),
  stateDir: z.string().min(1).optional(),
  redis: z.string().min(1).optional(),
  template: z.string().min(1).optional(),
  /**
   * Variables of keelson's own environment that steps and deploy runs see, by name. Nothing else
   * of keelson's environment reaches them (besides PATH, HOME, LANG, LC_ALL, TZ, TMPDIR).
   * Operator-only. @default []
   */
  passEnv: z.array(EnvName).default([]),
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
  // Which builder and which Job template (read from the tree, checked against allowBuilder) are the
  // repository's choice; everything else runs on, stores in, or limits the operator's cluster.
  kubernetes: z.strictObject({
    builder: KubernetesSpec.shape.builder.optional(),
    template: KubernetesSpec.shape.template,
    copyImage: operatorOnly('the copy pod receives the source tree'),
    builderImage: operatorOnly("the builder pod mounts the operator's registry credentials"),
    maxSourceBytes: operatorOnly("it is the operator's limit on what a commit may copy into the cluster"),
    sourceSize: operatorOnly("it is the volume the operator's cluster provides for each run"),
    storageClass: operatorOnly("it chooses the operator's storage"),
    keepFailed: operatorOnly("it keeps run namespaces, and the registry credentials in them, in the operator's cluster"),
    debug: operatorOnly("it keeps every run namespace, and the registry credentials in it, in the operator's cluster"),
    redisCacheAddr: operatorOnly("it is where the builder, with the operator's credentials, sends layers"),
  }).optional(),
});

function operatorOnly(why: string) {
  return z.unknown().refine(() => false, {
    error: `is operator-only (${why}): set it in the operator's --config, not in the repository`,
  }).optional();
}

/** Keys of the operator's config that a repository's own keelson.yaml may not set. */
export const OPERATOR_ONLY_KEYS: ReadonlySet<string> = new Set(
  Object.keys(KeelsonFile.shape).filter((key) => !Object.hasOwn(PipelineSpec.shape, key)));

/**
 * The pipeline a repository carries in its own committed tree (`keelson.yaml`). Only the
 * pipeline keys are allowed there: where to run, which secrets and which of keelson's
 * environment to pass, are the operator's choice, not the repository's. Of `kubernetes:` it may
 * choose the builder and its template; the rest is the operator's (`operatorKubernetes`, from the
 * --config file). Errors name keys and lines, never the values found, so that whatever the file
 * holds is not echoed into run records.
 */
export function parseRepositoryPipeline(text: string, file: string, operatorKubernetes: KubernetesSpec = KubernetesSpec.parse({})): PipelineSpec {
  const { deploy: _refused, kubernetes: chosen, ...pipeline } = parseYamlWith(RepositoryPipeline, text, file, {
    quoteValues: false,
    unknownKey: (key, path) => path.length === 0 && OPERATOR_ONLY_KEYS.has(key)
      ? `"${key}" is an operator setting: it is allowed only in the operator's --config file, not in a repository's keelson.yaml`
      : undefined,
  });
  // The operator's template belongs to the operator's own pipeline; a repository brings its own or the stock one.
  const { template: _operatorTemplate, ...operator } = operatorKubernetes;
  return {
    ...pipeline,
    kubernetes: {
      ...operator,
      ...(chosen?.builder ? { builder: chosen.builder } : {}),
      ...(chosen?.template ? { template: chosen.template } : {}),
    },
  };
}
