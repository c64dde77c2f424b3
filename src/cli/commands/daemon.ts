import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Duration } from '../../domain/index.js';
import { InputError, KeelsonError, UsageError } from '../../errors.js';
import { DependencyTracker } from '../../deps/index.js';
import { connectKube, type KubeClient } from '../../kube/index.js';
import { GitWatcher, parseWatchSpec, type WatchSpec } from '../../git/index.js';
import { createLogger, registerSecret, type Logger } from '../../log/index.js';
import { RegistryClient } from '../../registry/index.js';
import { RegistryWatcher } from '../../registry-watch/index.js';
import { RegistryWatcherSource, RolloutController, RolloutOutcome, type RolloutResult } from '../../rollout/index.js';
import { approvalBookSource, createServer, gitWatcherSources, LeaderView, recordRunFinished, registryCycleOverrunTotal, type ApprovalSource, type ServerSources } from '../../server/index.js';
import { addPipelineOptions, parsePort, readConfigFile, setUpPipeline, type PipelineFlags, type PipelineSetup } from '../pipeline-setup.js';
import { collect } from '../program.js';
import { untilStopSignal } from '../signals.js';
import { configuredWatches, resolveWatches } from '../watches.js';

interface DaemonFlags extends PipelineFlags {
  readonly port?: string;
  readonly host?: string;
  readonly namespace?: string[];
  readonly rollouts: boolean;
  readonly tokenFile?: string;
  readonly githubSecretFile?: string;
  readonly registryTokenFile?: string;
  readonly schedule?: string;
  readonly leaderElect?: boolean;
  readonly leaseTtl?: string;
}

/**
 * `keelson daemon`: with no config, Keel's job — the rollout controller over every namespace it
 * may see. With a config: the git watches and builds as well, in one process, behind an HTTP
 * server (health, metrics, webhooks, status page). SIGTERM stops it gracefully: no half-applied
 * patch, the run in progress is recorded as interrupted.
 */
export function registerDaemonCommand(program: Command): void {
  const command = program
    .command('daemon')
    .description('run the git watches, builds, registry watcher, rollouts and the HTTP server in one process')
    .option('--port <port>', 'HTTP port (default: 8080, or server.port in the config)')
    .option('--host <host>', 'HTTP bind address (default: 0.0.0.0)')
    .option('--namespace <ns>', 'watch workloads in this namespace only (repeatable; default: all)', collect)
    .option('--no-rollouts', 'do not run the rollout controller (no cluster needed)')
    .option('--token-file <file>', 'bearer token that approve/reject and other changes through HTTP need')
    .option('--github-secret-file <file>', 'HMAC secret of GitHub push webhooks')
    .option('--registry-token-file <file>', 'token that /webhooks/registry requires (Authorization: Bearer TOKEN or ?token=TOKEN)')
    .option('--schedule <schedule>', 'git poll schedule (default: @every 30s)')
    .option('--leader-elect', 'several replicas share --redis; only the elected leader polls, builds and rolls')
    .option('--lease-ttl <duration>', 'how soon a dead leader is replaced (default: 10s)');
  addPipelineOptions(command).action(async (flags: DaemonFlags) => {
    const logger = createLogger();
    const port = flags.port === undefined ? undefined : parsePort(flags.port, '--port');
    // Everything the user gave is checked before the store is opened or anything starts.
    const file = await readConfigFile(flags);
    const token = await readSecretFile(flags.tokenFile, '--token-file');
    const githubSecret = await readSecretFile(flags.githubSecretFile ?? file?.server?.githubSecretFile, '--github-secret-file');
    const registryToken = await readSecretFile(flags.registryTokenFile ?? file?.server?.registryTokenFile, '--registry-token-file');
    const specs: WatchSpec[] = configuredWatches(file, flags.schedule);
    const rolloutsEnabled = flags.rollouts && (file?.rollouts?.enabled ?? true);
    // The rollouts talk to the API server through the small client (kube/): client-node is
    // loaded only by a kubernetes executor or a credential plugin.
    const kube = rolloutsEnabled ? connectKube(flags.kubeconfig === undefined ? {} : { file: flags.kubeconfig }) : undefined;
    const redisUrl = flags.redis ?? file?.redis;
    if (flags.leaderElect && !redisUrl) {
      throw new UsageError('--leader-elect needs the shared Redis store: add --redis URL');
    }
    const leaseTtl = flags.leaseTtl === undefined ? undefined : parseLeaseTtl(flags.leaseTtl);
    const setup = await setUpPipeline(flags, logger, { onRunFinished: recordRunFinished }, file);
    const stops: Array<() => Promise<void>> = [];
    const stopAll = async (): Promise<void> => {
      for (const stop of stops.reverse()) await stop().catch((error: unknown) => logger.error({ err: String(error) }, 'error while stopping'));
    };
    try {
      // The work only the leader does. Built afresh for each term: a stopped watcher stays stopped.
      let work: DaemonWork | undefined;
      const startWork = async (): Promise<void> => {
        work = await startDaemonWork({ setup, specs, ...(kube ? { kube } : {}), flags, logger });
      };
      const stopWork = async (): Promise<void> => {
        const stopping = work;
        work = undefined;
        await stopping?.stop();
      };
      stops.push(stopWork);

      let standby: LeaderView | undefined;
      const server = createServer({
        store: setup.store,
        logger,
        sources: leaderSources(() => work, specs.length > 0, rolloutsEnabled, () => standby),
        auth: { ...(token ? { token } : {}), readOnlyPublic: true },
        ...(githubSecret ? { githubWebhookSecret: githubSecret } : {}),
        ...(registryToken ? { registryWebhookToken: registryToken } : {}),
        ...(file?.publicUrl ? { publicUrl: file.publicUrl } : {}),
      });
      const listening = await server.listen(port ?? file?.server?.port ?? 8080, flags.host ?? file?.server?.host ?? '0.0.0.0');
      stops.unshift(() => listening.close());

      if (flags.leaderElect) {
        // Loaded (with ioredis) by the replicas that elect a leader only.
        const { RedisLease } = await import('../../leader/index.js');
        const lease = new RedisLease({ redisUrl: redisUrl!, logger, address: advertisedAddress(listening.url, listening.port), ...(leaseTtl ? { ttl: leaseTtl } : {}) });
        standby = new LeaderView(() => lease.leaderAddress());
        lease.start({ onStartedLeading: startWork, onStoppedLeading: stopWork });
        stops.push(() => lease.stop());
      } else {
        await startWork();
      }
      // Listening for SIGTERM before saying we started: a supervisor (or test) that stops us as soon
      // as it reads the line must get a graceful stop, not the default exit.
      const stopSignal = untilStopSignal();
      logger.info({ url: listening.url, watches: specs.length, rollouts: rolloutsEnabled, leaderElect: flags.leaderElect === true }, 'keelson daemon started');

      const signal = await stopSignal;
      logger.info({ signal }, 'stopping');
    } finally {
      await stopAll();
      await setup.dispose();
      await setup.store.close();
      await kube?.close();
    }
  });
}

interface DaemonWork {
  readonly registryWatcher: RegistryWatcher;
  readonly controller?: RolloutController;
  readonly dependencies?: DependencyTracker;
  readonly gitWatcher?: GitWatcher;
  stop(): Promise<void>;
}

interface DaemonWorkOptions {
  readonly setup: PipelineSetup;
  readonly specs: readonly WatchSpec[];
  readonly kube?: KubeClient;
  readonly flags: DaemonFlags;
  readonly logger: Logger;
}

/** Starts the registry watcher, the rollout controller and the git watches. */
async function startDaemonWork({ setup, specs, kube, flags, logger }: DaemonWorkOptions): Promise<DaemonWork> {
  const file = setup.file;
  const notifiedApprovals = new Set<string>();
  const client = new RegistryClient({ credentials: setup.credentials, logger });
  const registryWatcher = new RegistryWatcher({ reader: client, store: setup.store, logger, onOverrun: (late) => registryCycleOverrunTotal.inc(late) });
  let controller: RolloutController | undefined;
  let dependencies: DependencyTracker | undefined;
  if (kube) {
    dependencies = new DependencyTracker();
    controller = new RolloutController({
      observers: [dependencies],
      kube,
      store: setup.store,
      source: new RegistryWatcherSource(registryWatcher, logger),
      logger,
      namespaces: flags.namespace ?? file?.rollouts?.namespaces ?? [],
      resolveDigest: (repository, tag) => client.manifestDigest(repository, tag),
      onResult: (result) => void notifyRollout(setup, controller!, result, notifiedApprovals),
    });
    await controller.start();
  }
  registryWatcher.start();
  let gitWatcher: GitWatcher | undefined;
  if (specs.length > 0) {
    // Runs left going by a previous leader (or by this process before a kill -9) are interrupted.
    await setup.runner.recoverInterruptedRuns();
    gitWatcher = new GitWatcher({
      watches: await resolveWatches(specs, setup.store, logger), trigger: setup.runner, state: setup.store, logger,
      schedule: flags.schedule ?? file?.schedule ?? '@every 30s',
      supersede: flags.supersede === true,
      history: setup.history,
    });
    gitWatcher.start();
  }
  return {
    registryWatcher,
    ...(controller ? { controller } : {}),
    ...(dependencies ? { dependencies } : {}),
    ...(gitWatcher ? { gitWatcher } : {}),
    stop: async () => {
      await gitWatcher?.stop();
      await controller?.stop();
      await registryWatcher.stop();
      await client.close();
    },
  };
}

/** rollout.done for applied (or failed) updates; approval.needed once per approval. */
async function notifyRollout(setup: PipelineSetup, controller: RolloutController, result: RolloutResult, notifiedApprovals: Set<string>): Promise<void> {
  const workload = `${result.workload.kind}/${result.workload.namespace}/${result.workload.name}`;
  const change = result.changes[0];
  if (result.outcome === RolloutOutcome.AwaitingApproval) {
    if (!result.approvalId || notifiedApprovals.has(result.approvalId)) return;
    notifiedApprovals.add(result.approvalId);
    const approval = await controller.approvals.get(result.approvalId).catch(() => undefined);
    await setup.notify({
      kind: 'approval.needed', approvalId: result.approvalId, workload, image: change?.to ?? '',
      votesRequired: approval?.votesRequired ?? 1, ...(approval ? { deadline: approval.deadline } : {}),
    });
    return;
  }
  await setup.notify({
    kind: 'rollout.done', workload, image: change?.to ?? '', ok: result.outcome === RolloutOutcome.Applied, message: result.message,
    ...(change?.from ? { previousImage: change.from } : {}),
  });
}

/** What the server shows, read from whatever work this replica is doing now. A standby replica
 * (`standby()` gives the leader's view) shows the leader's; runs and logs come from the shared store. */
function leaderSources(current: () => DaemonWork | undefined, watches: boolean, rollouts: boolean, standby: () => LeaderView | undefined): ServerSources {
  /** This replica's own answer while it works, else the leader's, else (not started yet) none. */
  const either = async <T>(own: (work: DaemonWork) => readonly T[] | Promise<readonly T[]>, path: string): Promise<readonly T[]> => {
    const work = current();
    if (work) return own(work);
    const view = standby();
    return view ? view.list<T>(path) : [];
  };
  const sources: { -readonly [K in keyof ServerSources]: ServerSources[K] } = {
    registry: {
      jobs: () => either((work) => work.registryWatcher.status(), '/api/registry'),
      checkNow: async (repository) => current()?.registryWatcher.checkNow(repository),
    },
  };
  if (rollouts) {
    sources.workloads = { workloads: () => either((work) => work.controller?.workloads() ?? [], '/api/workloads') };
    sources.dependencies = { dependencies: () => either((work) => work.dependencies?.dependencies() ?? [], '/api/dependencies') };
    const approvals = (): ApprovalSource => {
      const controller = current()?.controller;
      if (!controller) throw new NotLeaderError();
      return approvalBookSource(controller.approvals);
    };
    sources.approvals = {
      pending: () => either((work) => work.controller ? approvalBookSource(work.controller.approvals).pending() : [], '/api/approvals'),
      approve: (id, by) => approvals().approve(id, by),
      reject: (id, by) => approvals().reject(id, by),
    };
  }
  if (watches) {
    sources.watches = {
      watches: () => either((work) => work.gitWatcher?.status() ?? [], '/api/watches'),
      checkNow: (key) => current()?.gitWatcher?.pollOnce(key),
    };
    sources.gitPush = {
      push: (event) => {
        const watcher = current()?.gitWatcher;
        return watcher ? gitWatcherSources(watcher).gitPush.push(event) : undefined;
      },
    };
  }
  return sources;
}

/**
 * Where the other replicas reach this one: the pod's IP (POD_IP, from the downward API) in a
 * cluster, else the address it listens on, with the host name for a wildcard address.
 */
function advertisedAddress(listeningUrl: string, port: number): string {
  const podIp = process.env.POD_IP;
  if (podIp) return `http://${podIp.includes(':') ? `[${podIp}]` : podIp}:${port}`;
  return listeningUrl.replace(/^http:\/\/(0\.0\.0\.0|\[::\])(?=:)/, `http://${hostname()}`);
}

/** Approving on a replica that is not the leader: the client should retry on another. */
class NotLeaderError extends KeelsonError {
  readonly code = 'KEELSON_NOT_LEADER';
  readonly exitCode = 1;
  override readonly name = 'NotLeaderError';
  constructor() {
    super('this replica is not the leader; retry the request (the Service sends it to another replica)');
  }
}

function parseLeaseTtl(text: string): Duration {
  const ttl = Duration.tryParse(text);
  if (!ttl || ttl.milliseconds < 1000) throw new UsageError(`--lease-ttl: "${text}" is not a duration of at least 1s`);
  return ttl;
}

async function readSecretFile(file: string | undefined, flag: string): Promise<string | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new InputError(file, `${flag}: cannot read the file`, { cause: error });
  }
  if (text.length === 0) throw new InputError(file, `${flag}: the file is empty`);
  registerSecret(text);
  return text;
}
