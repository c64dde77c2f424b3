import { constants } from 'node:fs';
import { access, chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { BuildSpec, loadKeelsonFile, PipelineSpec, type BuilderPrivilege, type KeelsonFile } from '../config/index.js';
import { Duration } from '../domain/index.js';
import { InputError, messageOf, UsageError } from '../errors.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { createExecutor, type Executor } from '../executor/index.js';
import { apiMessage, connectKube, type KubeClient } from '../kube/index.js';
import { gitCommitHistory, materializeCommit, parseWatchSpec, repositoryKey, type CommitHistory, type WatchSpec } from '../git/index.js';
import { pidExists } from '../proc/index.js';
import { registerSecret, type Logger } from '../log/index.js';
import { PipelineRunner, type SourceMaterializer } from '../pipeline/index.js';
import { anonymousCredentials, loadRegistryConfig, toDockerConfigJson, usesPlainHttp, type CredentialLookup } from '../registry/index.js';
import { createReporters, recordReport, type NotificationEvent } from '../report/index.js';
import { defaultStateDir, type RunRecord, type Store } from '../store/index.js';
import { collect } from './program.js';
import { addStoreOptions, openStoreFromOptions, type StoreFlags } from './store-options.js';

/** Flags shared by `watch`, `run` and `daemon`. */
export interface PipelineFlags extends StoreFlags {
  readonly config?: string;
  readonly step?: string[];
  readonly timeout?: string;
  readonly executor?: string;
  readonly registry?: string;
  readonly registryConfig?: string;
  readonly image?: string;
  readonly template?: string;
  readonly debug?: boolean;
  readonly workers?: string;
  readonly supersede?: boolean;
  readonly kubeconfig?: string;
  readonly passEnv?: string[];
}

/** The pipeline flags; `oneRun` leaves out those that only mean something to a watcher. */
export function addPipelineOptions(command: Command, { oneRun = false }: { oneRun?: boolean } = {}): Command {
  addStoreOptions(command);
  command
    .option('--config <file>', 'keelson.yaml with the pipeline (steps:, build:, ...) and settings')
    .option('--step <cmd>', 'a pipeline step run with sh -c in the committed tree (repeatable)', collect)
    .option('--timeout <duration>', 'per-run timeout, e.g. 10m (default: 30m)')
    .option('--executor <kind>', 'local or kubernetes (default: local)')
    .option('--registry <host>', 'registry host[:port] that built images are pushed to')
    .option('--registry-config <file>', 'registry credentials and TLS settings (registry/registry-template.yaml)')
    .option('--image <name>', 'build the Dockerfile at the repository root as this image, e.g. team/app')
    .option('--template <file>', 'builder Job template for the kubernetes executor')
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account)')
    .option('--pass-env <name>', "a variable of keelson's environment that steps see too (repeatable; default: none)", collect)
    .option('--debug', 'keep every workspace and run namespace');
  if (oneRun) return command;
  return command
    .option('--workers <n>', 'runs going at once across watches; runs of one watch stay in order (default: 1)')
    .option('--supersede', 'cancel a running build when a newer commit of the same watch lands (default: build it, then the newest)');
}

export interface PipelineSetup {
  readonly store: Store;
  readonly runner: PipelineRunner;
  readonly executor: Executor;
  readonly file?: KeelsonFile;
  readonly credentials: CredentialLookup;
  /** The operator's pipeline; undefined when each run reads the repository's keelson.yaml. */
  readonly pipeline?: PipelineSpec;
  /** Registry host[:port] that builds push to. */
  readonly registry?: string;
  /** The docker config file with registry credentials for builders (from --registry-config). */
  readonly authFile?: string;
  /** Names of keelson's environment variables that steps and deploy runs see (`passEnv`, `--pass-env`). */
  readonly passEnv: readonly string[];
  /** Lists the commits between two commits of a watch (skipped records). */
  readonly history: CommitHistory;
  /** Sends a rollout or approval notification to the pipeline's `report.notifications`; never throws. */
  notify(event: NotificationEvent): Promise<void>;
  /** Removes temporary files (the generated registry auth file). */
  dispose(): Promise<void>;
}

export interface PipelineHooks {
  /** Each run's output as it comes (e.g. the terminal for `keelson run`). */
  readonly echo?: (text: string) => void;
  /** Called when a run reaches a terminal phase (metrics, reporters). */
  readonly onRunFinished?: (run: RunRecord) => void | Promise<void>;
  readonly onRunStarted?: (run: RunRecord) => void | Promise<void>;
  readonly onStage?: (runId: string, stage: string) => void;
}

/**
 * Reads flags and the config file, checks them all before anything is written or run, and wires
 * the store, executor and pipeline runner. Flags win over the config file.
 */
export async function setUpPipeline(flags: PipelineFlags, logger: Logger, hooks: PipelineHooks = {},
  loaded?: KeelsonFile): Promise<PipelineSetup> {
  const file = loaded ?? (await readConfigFile(flags));
  const pipeline = pipelineFrom(flags, file);
  const executorKind = flags.executor ?? file?.executor ?? 'local';
  if (executorKind !== 'local' && executorKind !== 'kubernetes') {
    throw new UsageError(`--executor: unknown executor "${executorKind}" (expected local or kubernetes)`);
  }
  const registry = flags.registry ?? file?.registry;
  if (registry !== undefined && !/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) {
    throw new UsageError(`--registry: "${registry}" is not a registry host[:port]`);
  }
  // Paths in the config file are relative to that file; flags are absolute already (program.ts).
  const configDir = flags.config ? path.dirname(path.resolve(flags.config)) : process.cwd();
  const fromFile = (value: string | undefined): string | undefined => (value === undefined ? undefined : path.resolve(configDir, value));
  const registryConfigPath = flags.registryConfig ?? fromFile(file?.registryConfig);
  const credentials = registryConfigPath ? await loadRegistryConfig(registryConfigPath) : anonymousCredentials;

  const storeFlags: StoreFlags = {
    ...(flags.stateDir ?? (flags.redis ? undefined : file?.stateDir) ? { stateDir: flags.stateDir ?? fromFile(file?.stateDir) } : {}),
    ...(flags.redis ?? (flags.stateDir ? undefined : file?.redis) ? { redis: flags.redis ?? file?.redis } : {}),
  };
  const workers = flags.workers === undefined ? 1 : Number(flags.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new UsageError(`--workers: "${flags.workers}" is not a whole number between 1 and 64`);
  }
  const template = await operatorTemplate(flags, file);
  const passEnv = passedEnvironment(flags, file);
  const kubeConfig = executorKind === 'kubernetes' ? await loadKubeConfig(flags.kubeconfig) : undefined;
  // Commit statuses and notifications; token files are read now, so a missing one is exit 2.
  const reporters = file?.report ? await createReporters(file.report, {
    logger, baseDir: path.dirname(path.resolve(flags.config!)), ...(file.publicUrl ? { runPageBaseUrl: file.publicUrl } : {}),
    readSecret: async (ref) => {
      const kube = connectKube(flags.kubeconfig === undefined ? {} : { file: flags.kubeconfig });
      try {
        return await readSecretKey(kube, ref);
      } finally {
        await kube.close();
      }
    },
  }) : undefined;
  // Everything above only read and checked; from here on the store and files are written.
  const store = await openStoreFromOptions(storeFlags, { exclusive: true });
  const workRoot = storeFlags.stateDir ?? (storeFlags.redis ? path.join(os.tmpdir(), 'keelson') : defaultStateDir());
  const authDir = path.join(workRoot, 'auth');
  // The file store's lock makes this process the only one on the state dir: every other auth
  // file is a killed process's copy of the registry password. Elsewhere, those of dead pids.
  await removeStaleAuthFiles(authDir, storeFlags.redis === undefined);
  let authFile: string | undefined;
  if (registryConfigPath) {
    // Builders read credentials from a file, never from a command line or the environment.
    await mkdir(authDir, { recursive: true, mode: 0o700 });
    authFile = path.join(authDir, `config-${process.pid}.json`);
    await writeFile(authFile, toDockerConfigJson(credentials), { mode: 0o600 });
    await chmod(authFile, 0o600);
  }
  const executor = kubeConfig
    ? await createExecutor({
      kind: 'kubernetes', kubeConfig, credentials,
      ...(template ? { template } : {}),
      // Operator-only (a repository's keelson.yaml cannot set them): from the --config file.
      ...(file?.kubernetes.copyImage ? { copyImage: file.kubernetes.copyImage } : {}),
      ...(file?.kubernetes.builderImage ? { builderImage: file.kubernetes.builderImage } : {}),
    })
    : await createExecutor({
      kind: 'local',
      passEnv,
      ...(authFile ? { authFile } : {}),
      isInsecureRegistry: (host) => usesPlainHttp(host, credentials),
    });
  const cacheDir = path.join(workRoot, 'git-mirrors');
  const materializer: SourceMaterializer = {
    materialize: async (watch, commit, destDir, signal) => {
      await materializeCommit(watch as WatchSpec, commit, destDir, { cacheDir, signal });
    },
  };
  const runner = new PipelineRunner({
    store,
    executor,
    materializer,
    ...(pipeline ? { pipeline } : {}),
    ...(registry ? { registry } : {}),
    allowBuilder: builderAllowances(file),
    ...(file ? { operatorKubernetes: file.kubernetes } : {}),
    workspaceDir: path.join(workRoot, 'workspaces'),
    keepWorkspaces: flags.debug === true,
    workers,
    logger,
    ...(hooks.echo ? { echo: hooks.echo } : {}),
    ...(hooks.onStage ? { onStage: hooks.onStage } : {}),
    onRunStarted: async (run) => {
      if (reporters) await recordReport(store, run.id, await reporters.runStarted(run), logger);
      await hooks.onRunStarted?.(run);
    },
    onRunFinished: async (run) => {
      if (reporters) await recordReport(store, run.id, await reporters.runFinished(run), logger);
      await hooks.onRunFinished?.(run);
    },
  });
  return {
    store, runner, executor, credentials, passEnv,
    history: gitCommitHistory({ cacheDir }),
    ...(file ? { file } : {}),
    ...(pipeline ? { pipeline } : {}),
    ...(registry ? { registry } : {}),
    ...(authFile ? { authFile } : {}),
    notify: async (event) => {
      if (reporters) await reporters.notify(event);
    },
    dispose: async () => {
      await reporters?.close();
      if (authFile) await rm(authFile, { force: true });
    },
  };
}

/** Removes `config-<pid>.json` files of other processes: all of them, or those of dead pids. */
async function removeStaleAuthFiles(authDir: string, all: boolean): Promise<void> {
  for (const name of await readdir(authDir).catch((): string[] => [])) {
    const pid = /^config-(\d+)\.json$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid) continue;
    if (all || !pidExists(Number(pid))) await rm(path.join(authDir, name), { force: true });
  }
}

/**
 * The operator's pipeline: `--step`/`--image`/`--timeout` over the config file. Undefined when
 * neither gives steps or a build, so each run uses the repository's own keelson.yaml.
 */
export function pipelineFrom(flags: PipelineFlags, file: KeelsonFile | undefined): PipelineSpec | undefined {
  const steps = flags.step && flags.step.length > 0 ? flags.step : file?.steps ?? [];
  let timeout = file?.timeout;
  if (flags.timeout !== undefined) {
    timeout = Duration.tryParse(flags.timeout);
    if (!timeout || timeout.milliseconds === 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a duration (expected e.g. 30s, 10m)`);
  }
  let build = file?.build;
  if (flags.image !== undefined) {
    const parsed = BuildSpec.safeParse({ ...(build ?? {}), image: flags.image });
    if (!parsed.success) throw new UsageError(`--image: "${flags.image}": ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    build = parsed.data;
  }
  if (steps.length === 0 && !build) return undefined;
  const base = PipelineSpec.parse({ steps, env: file?.env ?? {} });
  const kubernetes = file?.kubernetes ?? base.kubernetes;
  const template = flags.template ?? file?.template ?? kubernetes.template;
  return {
    ...base,
    kubernetes: { ...kubernetes, ...(template ? { template } : {}) },
    ...(timeout ? { timeout } : {}),
    ...(build ? { build } : {}),
    ...(file?.deploy ? { deploy: file.deploy } : {}),
  };
}

/**
 * The operator's builder Job template for the kubernetes executor: `--template`, else `template:`
 * or `kubernetes.template:` of the config file (relative to that file). Checked now, so a typo
 * is exit 2 before anything runs. A repository's own keelson.yaml cannot name one outside its tree.
 */
async function operatorTemplate(flags: PipelineFlags, file: KeelsonFile | undefined): Promise<string | undefined> {
  const fromFile = file?.template ?? file?.kubernetes.template;
  const template = flags.template !== undefined ? path.resolve(flags.template)
    : fromFile !== undefined ? path.resolve(path.dirname(path.resolve(flags.config!)), fromFile) : undefined;
  if (template === undefined) return undefined;
  try {
    await access(template, constants.R_OK);
  } catch (error) {
    throw new InputError(template, `cannot read the builder template: ${messageOf(error)}`, { cause: error });
  }
  return template;
}

/**
 * The operator's `allowBuilder:` of each watch in the config file, by watch key. A watch written
 * without `^BRANCH` follows the default branch, whose name is known only when it is resolved: its
 * allowance holds for the repository's branch keelson resolves it to.
 */
function builderAllowances(file: KeelsonFile | undefined): (watchKey: string) => readonly BuilderPrivilege[] {
  const byKey = new Map<string, readonly BuilderPrivilege[]>();
  const byRepository = new Map<string, readonly BuilderPrivilege[]>();
  for (const watch of file?.watches ?? []) {
    if (watch.allowBuilder.length === 0) continue;
    const spec = parseWatchSpec(watch.repo);
    if (spec.branch !== undefined) byKey.set(spec.key, watch.allowBuilder);
    else byRepository.set(repositoryKey(spec), watch.allowBuilder);
  }
  return (watchKey) => byKey.get(watchKey) ?? byRepository.get(watchKey.slice(0, watchKey.lastIndexOf('^'))) ?? [];
}

/**
 * The operator's `passEnv:` and `--pass-env` names. Their values are the operator's and may be
 * tokens, so each is registered as a secret: a step that prints one prints [REDACTED].
 */
function passedEnvironment(flags: PipelineFlags, file: KeelsonFile | undefined): string[] {
  const names = [...new Set([...(file?.passEnv ?? []), ...(flags.passEnv ?? [])])];
  for (const name of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--pass-env: "${name}" is not an environment variable name`);
    registerSecret(process.env[name]);
  }
  return names;
}

/** A TCP port from a flag (0 asks the system for a free one). */
export function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`${flag}: "${text}" is not a port number`);
  return port;
}

/**
 * client-node's KubeConfig, for the kubernetes executor only (imported here, when asked for:
 * see createExecutor): the file given, else KUBECONFIG, ~/.kube/config or the service account.
 */
export async function loadKubeConfig(file: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  try {
    if (file) kubeConfig.loadFromFile(file);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new InputError(file ?? 'kubeconfig', `cannot load the kubeconfig: ${messageOf(error)}`, { cause: error });
  }
  return kubeConfig;
}

/**
 * One key of a Secret in keelson's own namespace (POD_NAMESPACE in a pod, else the kubeconfig
 * context's namespace), registered as a secret the moment it is read.
 */
export async function readSecretKey(kube: KubeClient, ref: { name: string; key: string }): Promise<string> {
  const namespace = process.env.POD_NAMESPACE ?? kube.namespace ?? 'default';
  const where = `secret ${namespace}/${ref.name}`;
  let data: Record<string, string> | undefined;
  try {
    data = (await kube.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(ref.name)}`)).data;
  } catch (error) {
    throw new InputError(where, `cannot read it: ${apiMessage(error).split('\n')[0]}`, { cause: error });
  }
  const encoded = data?.[ref.key];
  if (encoded === undefined) throw new InputError(where, `has no key "${ref.key}"`);
  const value = Buffer.from(encoded, 'base64').toString('utf8').trim();
  registerSecret(value);
  return value;
}

/** The --config file, checked; undefined without --config. */
export async function readConfigFile(flags: Pick<PipelineFlags, 'config'>): Promise<KeelsonFile | undefined> {
  return flags.config ? loadKeelsonFile(flags.config) : undefined;
}
