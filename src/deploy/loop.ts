import type { PipelineSpec } from '../config/index.js';
import { newRunId, type RunId } from '../domain/index.js';
import { InputError, messageOf } from '../errors.js';
import { expandTags, toolEnvironment } from '../executor/index.js';
import { silentLogger, StreamRedactor, type Logger } from '../log/index.js';
import { parsePolicy } from '../policy/index.js';
import { isLoopbackHost } from '../registry/index.js';
import { immediateJitter, parseSchedule, RegistryWatcher, type RegistryReader, type Schedule } from '../registry-watch/index.js';
import { RunReason, type RunPhase, type RunRecord, type Store } from '../store/index.js';
import { removeWorkingContainer, runImage } from './run-image.js';
import { BuiltImage, DeployedMark } from './schema.js';
import type { DeployTool, RunImageResult } from './types.js';

export interface LocalDeployLoopOptions {
  /** Deploy runs, their logs, and the `image:<digest>` / `deployed:<digest>` state. */
  readonly store: Store;
  /** Reads the followed tags' digests: a RegistryClient with the registry's credentials. */
  readonly registryReader: RegistryReader;
  /** Must declare `deploy:`; the image run is `deploy.image`, else `build.image`. */
  readonly pipeline: PipelineSpec;
  /** host[:port] the build pushes to, e.g. `127.0.0.1:5000`. */
  readonly registry: string;
  /** The expanded tags to follow, e.g. `deployTags(pipeline, 'main')` → `['main']`. */
  readonly tags: readonly string[];
  /** The build's watch key (`repo^branch`); deploy runs are listed under it. @default `image:<host/path>:<tag>` */
  readonly watchKey?: string;
  /** Plain HTTP / unverified TLS when pulling. @default true for loopback hosts only, as docker does */
  readonly insecure?: boolean;
  /** A docker config.json with credentials for pulling (never passed on a command line). */
  readonly authFile?: string;
  /**
   * keelson's environment, which buildah/podman/docker pick their own configuration from (storage
   * config, BUILDAH_ISOLATION; see toolEnvironment); never passed whole. @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Names of variables of `env` the tool also gets (the operator's `passEnv:`). @default [] */
  readonly passEnv?: readonly string[];
  /** @default a silent logger */
  readonly logger?: Logger;
  /** How often the followed tags are checked. @default `@every 30s` */
  readonly schedule?: string | Schedule;
  /** Also writes each deploy's output here (a terminal). */
  readonly echo?: (text: string) => void;
  /** Called when a deploy run reaches a terminal phase (reporters). */
  readonly onRunFinished?: (run: RunRecord) => void;
}

const DEFAULT_SCHEDULE = '@every 30s';

const KNOWN_OPTIONS = new Set(['store', 'registryReader', 'pipeline', 'registry', 'tags', 'watchKey', 'insecure', 'authFile',
  'env', 'passEnv', 'logger', 'schedule', 'echo', 'onRunFinished']);

const REGISTRY_HOST = /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/;

/**
 * The reasons a deploy run ends with. They map onto the store's run reasons so that
 * `keelson runs` and reporters treat a deploy like any other run.
 */
export const DeployReason = {
  Started: RunReason.Started,
  Succeeded: RunReason.StepsSucceeded,
  CommandFailed: RunReason.StepFailed,
  PullFailed: RunReason.ExecutorError,
  TimedOut: RunReason.TimedOut,
  Shutdown: RunReason.Shutdown,
} as const;

/** What one pollOnce/checkNow/recordBuild did. */
export interface DeployPollResult {
  /** Registry checks made */
  readonly checked: number;
  readonly failed: number;
  /** Deploy runs that finished meanwhile, in order */
  readonly runs: readonly RunRecord[];
}

/** A digest seen for a followed tag: `observed` on every check, `changed` when the watcher says it moved. */
interface Candidate {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly cause: 'observed' | 'changed';
}

/**
 * The tags of a build that a deploy loop can follow: those that do not name the commit
 * (`{{branch}}`, fixed tags), expanded for `branch`. Without a build, the branch itself.
 */
export function deployTags(pipeline: PipelineSpec, branch: string): string[] {
  const declared = pipeline.build?.tags ?? ['{{branch}}'];
  const stable = declared.filter((tag) => !/\{\{\s*(commit|shortCommit)\s*\}\}/.test(tag));
  return expandTags(stable, { dir: '', repo: '', branch, commit: '' });
}

/**
 * The local loop's last step: follows the digest of the built image's tags in the
 * registry and, for each new digest, runs the image with `deploy.command` (buildah `from` +
 * `run` + `rm`, or podman/docker `run --rm`) and records that as a `deploy` run with its log.
 *
 * Which digests deploy:
 * - a digest the registry watcher reports as changed from its stored baseline (also one pushed
 *   while keelson was down);
 * - on any sight, a digest a build run pushed (`recordBuild`, or the watch's newest build run)
 *   that has not been deployed yet: the first build of a new tag deploys too;
 * - never a digest deployed before (`deployed:<digest>` is written when its deploy starts, so
 *   a restart never deploys the same digest twice); a first sight of an image nobody built
 *   here is only the baseline.
 * Deploys run one at a time, in the order they were seen.
 */
export class LocalDeployLoop {
  /** `host[:port]/path` of the image that is run */
  readonly repository: string;
  private readonly options: LocalDeployLoopOptions;
  private readonly command: readonly string[];
  private readonly timeoutMs: number;
  private readonly timeoutText: string;
  private readonly tool: DeployTool;
  private readonly insecure: boolean;
  private readonly logger: Logger;
  private readonly watcher: RegistryWatcher;
  /** Deploys and their checks, one at a time */
  private queue: Promise<void> = Promise.resolve();
  private lifecycle = new AbortController();
  private readonly collectors = new Set<RunRecord[]>();
  /** digest -> its build (or null: nobody built it here), for digests seen again and again */
  private readonly builds = new Map<string, BuiltImage | null>();

  constructor(options: LocalDeployLoopOptions) {
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`LocalDeployLoop: unknown option "${key}" (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
    const { pipeline } = options;
    if (!pipeline.deploy) {
      throw new InputError('pipeline.deploy', 'the deploy loop needs deploy: { command: [...] } in the pipeline');
    }
    const image = pipeline.deploy.image ?? pipeline.build?.image;
    if (!image) throw new InputError('pipeline.deploy.image', 'name the image to run (deploy.image) or declare build: { image: ... }');
    if (!REGISTRY_HOST.test(options.registry)) {
      throw new InputError('registry', `"${options.registry}" is not a registry host[:port]`);
    }
    if (options.tags.length === 0) {
      throw new InputError('deploy tags', 'no tag to follow: build.tags has only commit tags ({{shortCommit}}); add one such as {{branch}}');
    }
    this.options = options;
    this.repository = hasHost(image) ? image : `${options.registry}/${image}`;
    this.command = pipeline.deploy.command;
    this.timeoutMs = pipeline.deploy.timeout.milliseconds;
    this.timeoutText = String(pipeline.deploy.timeout);
    this.tool = pipeline.build?.tool ?? 'buildah';
    this.insecure = options.insecure ?? isLoopbackHost(this.repository.split('/')[0]!);
    this.logger = (options.logger ?? silentLogger()).child({ part: 'deploy', image: this.repository });
    const schedule = typeof options.schedule === 'string' || options.schedule === undefined
      ? parseSchedule(options.schedule ?? DEFAULT_SCHEDULE) : options.schedule;

    const reader = options.registryReader;
    this.watcher = new RegistryWatcher({
      // Every digest the watcher reads is also offered here: a first sight is no change to the
      // watcher, but a digest our own build pushed must still deploy.
      reader: {
        listTags: (repository, opts) => reader.listTags(repository, opts),
        manifestDigest: async (repository, reference, opts) => {
          const digest = await reader.manifestDigest(repository, reference, opts);
          void this.enqueue({ repository, tag: reference, digest, cause: 'observed' });
          return digest;
        },
      },
      store: options.store,
      logger: options.logger ?? silentLogger(),
      defaultSchedule: schedule,
      // One image's tags: checked at once, then every interval (nothing to spread).
      jitter: immediateJitter(),
    });
    const policy = parsePolicy('force');
    for (const tag of options.tags) {
      this.watcher.addTarget({ id: `deploy:${this.repository}:${tag}`, repository: this.repository, current: tag, policy, matchTag: true });
    }
    this.watcher.subscribe(async (change) => {
      if (change.newDigest) await this.enqueue({ repository: change.repository, tag: change.newTag, digest: change.newDigest, cause: 'changed' });
    });
  }

  /**
   * Removes what a deploy run interrupted by a dead keelson left in the container tool (its
   * processes were ended with the run's process groups; the working container stays otherwise,
   * and with buildah it keeps its whole root filesystem on disk). Failures are logged.
   */
  async removeInterruptedDeploy(runId: RunId): Promise<void> {
    const name = workingContainerName(runId);
    try {
      if (await removeWorkingContainer(this.tool, name, this.toolEnv())) this.logger.warn({ run: runId, container: name }, 'removed the working container of an interrupted deploy');
    } catch (error) {
      this.logger.error({ run: runId, container: name, error: messageOf(error) }, 'cannot remove the working container of an interrupted deploy');
    }
  }

  /** Checks the tags on their schedule until stop(). */
  start(): void {
    this.watcher.start();
  }

  /** Stops checking, aborts a deploy in flight (recorded as interrupted) and waits for it. */
  async stop(): Promise<void> {
    this.lifecycle.abort();
    await this.watcher.stop();
    await this.idle();
    this.lifecycle = new AbortController();
  }

  /** Checks the tags that are due, deploys what is new, and resolves when those deploys ended. */
  async pollOnce(): Promise<DeployPollResult> {
    return this.collect(async () => {
      const result = await this.watcher.pollOnce();
      return { checked: result.checked, failed: result.failed };
    });
  }

  /** Checks every followed tag now, whatever the schedule or backoff (after a push, a webhook). */
  async checkNow(): Promise<DeployPollResult> {
    return this.collect(async () => {
      const before = this.failures();
      await this.watcher.checkNow(this.repository);
      return { checked: this.watcher.status().length, failed: Math.max(0, this.failures() - before) };
    });
  }

  /**
   * Remembers which build run pushed a digest (`image:<digest>`), so its deploy names the commit
   * and a first sight of it deploys; then checks the tags at once. Wire it to the pipeline
   * runner's onRunFinished. Never rejects: a failure is logged.
   */
  async recordBuild(run: RunRecord): Promise<DeployPollResult> {
    const digest = run.image?.digest;
    if (run.kind !== 'build' || run.phase !== 'succeeded' || !run.image?.pushed || !digest) return { checked: 0, failed: 0, runs: [] };
    const built: BuiltImage = { runId: run.id, watch: run.watch, repo: run.repo, branch: run.branch, commit: run.commit, ref: run.image.ref };
    try {
      await this.options.store.setState<BuiltImage>(`image:${digest}`, built);
      this.builds.set(digest, built);
    } catch (error) {
      this.logger.error({ run: run.id, digest, error: messageOf(error) }, 'cannot record built image');
    }
    return this.checkNow();
  }

  /** The poll jobs (one per followed tag), for the status page. */
  status(): ReturnType<RegistryWatcher['status']> {
    return this.watcher.status();
  }

  private failures(): number {
    return this.watcher.status().reduce((sum, job) => sum + job.failures, 0);
  }

  private async collect(work: () => Promise<{ checked: number; failed: number }>): Promise<DeployPollResult> {
    const runs: RunRecord[] = [];
    this.collectors.add(runs);
    try {
      const { checked, failed } = await work();
      await this.idle();
      return { checked, failed, runs };
    } finally {
      this.collectors.delete(runs);
    }
  }

  /** Resolves when no deploy is queued or running. */
  private async idle(): Promise<void> {
    for (let tail = this.queue; ; tail = this.queue) {
      await tail;
      if (tail === this.queue) return;
    }
  }

  private enqueue(candidate: Candidate): Promise<void> {
    const task = this.queue.then(() => this.consider(candidate)).catch((error: unknown) => {
      this.logger.error({ tag: candidate.tag, digest: candidate.digest, error: messageOf(error) }, 'deploy could not be recorded');
    });
    this.queue = task;
    return task;
  }

  private async consider(candidate: Candidate): Promise<void> {
    const signal = this.lifecycle.signal;
    if (signal.aborted) return;
    const mark = await this.options.store.getState<unknown>(`deployed:${candidate.digest}`);
    let retryOf: string | undefined;
    if (mark !== undefined) {
      retryOf = await this.crashedDeploy(mark);
      if (retryOf === undefined) return;
    }
    const built = await this.findBuild(candidate.digest);
    // A first sight of an image nobody built here is the baseline, not a deploy.
    if (candidate.cause === 'observed' && !built && retryOf === undefined) return;
    await this.deploy(candidate, built ?? undefined, signal, retryOf);
  }

  /** The run id of a deploy that a crash cut off (it is run once more), else undefined. */
  private async crashedDeploy(mark: unknown): Promise<string | undefined> {
    const parsed = DeployedMark.safeParse(mark);
    if (!parsed.success) return undefined;
    const previous = await this.options.store.getRun(parsed.data.runId as RunId).catch(() => undefined);
    const crashed = previous?.phase === 'interrupted' && previous.reason === RunReason.ProcessDied && previous.retryOf === undefined;
    return crashed ? previous.id : undefined;
  }

  /** `image:<digest>`, else the watch's newest build run when it pushed this digest. */
  private async findBuild(digest: string): Promise<BuiltImage | null> {
    const known = this.builds.get(digest);
    if (known !== undefined) return known;
    let found: BuiltImage | null = null;
    const stored = BuiltImage.safeParse(await this.options.store.getState<unknown>(`image:${digest}`));
    if (stored.success) {
      found = stored.data;
    } else if (this.options.watchKey !== undefined) {
      const runs = await this.options.store.listRuns({ watch: this.options.watchKey, limit: 50 });
      const newest = runs.find((run) => run.kind === 'build' && run.phase === 'succeeded' && run.image?.digest !== undefined);
      if (newest && newest.image?.digest === digest) {
        found = { runId: newest.id, watch: newest.watch, repo: newest.repo, branch: newest.branch, commit: newest.commit, ref: newest.image.ref };
      }
    }
    this.builds.set(digest, found);
    return found;
  }

  private async deploy(candidate: Candidate, built: BuiltImage | undefined, signal: AbortSignal, retryOf?: string): Promise<void> {
    const { store } = this.options;
    const id = newRunId();
    const ref = `${candidate.repository}:${candidate.tag}`;
    const pinned = `${candidate.repository}@${candidate.digest}`;
    const shortDigest = candidate.digest.slice(0, 19);
    const log = this.logger.child({ run: id, tag: candidate.tag, digest: candidate.digest });
    // Marked before it runs: a crash mid-deploy must not deploy the digest a second time.
    await store.setState<DeployedMark>(`deployed:${candidate.digest}`, { runId: id, at: new Date().toISOString() });
    await store.createRun({
      id,
      kind: 'deploy',
      watch: this.options.watchKey ?? `image:${ref}`,
      repo: built?.repo ?? candidate.repository,
      branch: built?.branch ?? candidate.tag,
      commit: built?.commit ?? '',
      phase: 'running',
      reason: DeployReason.Started,
      message: `running ${ref}@${shortDigest}`,
      executor: 'local',
      ...(retryOf !== undefined ? { retryOf: retryOf as RunId } : {}),
    });
    log.info('deploy started');

    let appending: Promise<void> = Promise.resolve();
    const echo = new StreamRedactor();
    const sink = (text: string): void => {
      if (this.options.echo) this.options.echo(echo.push(text));
      appending = appending.then(() => store.appendLog(id, text)).catch((error: unknown) => {
        log.error({ error: messageOf(error) }, 'cannot store deploy log');
      });
    };
    sink(`keelson: deploying ${pinned} (${ref}${built ? `, built from ${built.commit.slice(0, 12)} by run ${built.runId}` : ''})\n`);
    sink(`keelson: running ${JSON.stringify(this.command)} with ${this.tool}\n`);

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    const stop = (): void => timeout.abort();
    signal.addEventListener('abort', stop, { once: true });
    let result: RunImageResult;
    try {
      result = await runImage({
        tool: this.tool,
        image: pinned,
        command: this.command,
        name: workingContainerName(id),
        insecure: this.insecure,
        ...(this.options.authFile ? { authFile: this.options.authFile } : {}),
        containerEnv: {
          ...this.options.pipeline.env,
          KEELSON_RUN_ID: id,
          KEELSON_IMAGE: ref,
          KEELSON_DIGEST: candidate.digest,
          ...(built ? { KEELSON_COMMIT: built.commit, KEELSON_BRANCH: built.branch } : {}),
        },
        env: this.toolEnv(),
        log: sink,
        signal: timeout.signal,
        recordProcess: (process) => store.recordRunProcess(id, process),
      });
    } catch (error) {
      sink(`keelson: cannot run ${pinned}: ${messageOf(error)}\n`);
      result = { ok: false, stage: 'pull', exitCode: null, aborted: false };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
    }
    const outcome = this.outcome(result, signal, pinned);
    sink(`keelson: deploy ${outcome.phase}: ${outcome.message}\n`);
    if (this.options.echo) this.options.echo(echo.flush());
    await appending;
    if (outcome.phase === 'interrupted') {
      // Stopped on purpose: a build's digest deploys again on the next start.
      await store.deleteState(`deployed:${candidate.digest}`);
    }
    const finished = await store.transitionRun(id, outcome.phase, outcome.reason, outcome.message, {
      ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
      image: { ref, digest: candidate.digest, pushed: true },
    });
    log[outcome.phase === 'succeeded' ? 'info' : 'warn']({ phase: outcome.phase, reason: outcome.reason, detail: outcome.message }, 'deploy finished');
    for (const runs of this.collectors) runs.push(finished);
    this.options.onRunFinished?.(finished);
  }

  /** What the container tool sees of keelson's environment. */
  private toolEnv(): NodeJS.ProcessEnv {
    return toolEnvironment({ env: this.options.env ?? process.env, passEnv: this.options.passEnv ?? [] });
  }

  private outcome(result: RunImageResult, signal: AbortSignal, pinned: string): { phase: RunPhase; reason: RunReason; message: string; exitCode?: number } {
    if (result.ok) return { phase: 'succeeded', reason: DeployReason.Succeeded, message: `${JSON.stringify(this.command)} succeeded in ${pinned}` };
    if (result.aborted && signal.aborted) {
      return { phase: 'interrupted', reason: DeployReason.Shutdown, message: 'keelson was stopped while this deploy was running' };
    }
    if (result.aborted) return { phase: 'failed', reason: DeployReason.TimedOut, message: `deploy exceeded its timeout of ${this.timeoutText}` };
    const exitCode = result.exitCode ?? undefined;
    const status = result.exitCode === null ? 'a signal' : String(result.exitCode);
    if (result.stage === 'pull') {
      return { phase: 'failed', reason: DeployReason.PullFailed, message: `${this.tool} could not pull ${pinned} (exited with ${status})`, ...(exitCode !== undefined ? { exitCode } : {}) };
    }
    return { phase: 'failed', reason: DeployReason.CommandFailed, message: `${JSON.stringify(this.command)} exited with ${status}`, ...(exitCode !== undefined ? { exitCode } : {}) };
  }
}

/** `host.example/team/app` or `localhost:5000/app` names its registry; `team/app` does not (docker's rule). */
function hasHost(image: string): boolean {
  const slash = image.indexOf('/');
  if (slash < 0) return false;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** The working container of a deploy run, named so that it can be found again after a crash. */
function workingContainerName(runId: RunId): string {
  return `keelson-deploy-${runId}`;
}
