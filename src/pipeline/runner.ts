import { lstatSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRepositoryPipeline, type BuilderPrivilege, type KubernetesSpec, type PipelineSpec } from '../config/index.js';
import { isSuperseded, newRunId, Slots, type RunId } from '../domain/index.js';
import { isKeelsonError, messageOf } from '../errors.js';
import type { ExecutionResult, Executor } from '../executor/index.js';
import { readTreeFile, TreePathError } from '../git/index.js';
import { StreamRedactor, type Logger } from '../log/index.js';
import { runQueueLength } from '../metrics/index.js';
import { endProcessGroup } from '../proc/index.js';
import { RunReason, type RunKind, type RunPhase, type RunRecord, type Store } from '../store/index.js';
import type { PipelineEvent, PipelineOutcome, SourceMaterializer } from './types.js';

/** How long a left-behind process group gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5000;

/** The file a repository may commit to carry its own pipeline. */
export const REPOSITORY_PIPELINE_FILE = 'keelson.yaml';

export interface PipelineRunnerOptions {
  readonly store: Store;
  readonly executor: Executor;
  readonly materializer: SourceMaterializer;
  /** The operator's pipeline (flags or --config). @default the repository's own keelson.yaml */
  readonly pipeline?: PipelineSpec;
  /** Registry host[:port] that builds push to. */
  readonly registry?: string;
  /** The operator's `kubernetes:` settings (limits, storage, retention), which a repository's own pipeline runs with. @default the defaults */
  readonly operatorKubernetes?: KubernetesSpec;
  /** What a repository's own pipeline may ask of its builder Job, per watch key (the operator's `allowBuilder`). @default nothing */
  readonly allowBuilder?: (watchKey: string) => readonly BuilderPrivilege[];
  /** Parent of the per-run workspaces. */
  readonly workspaceDir: string;
  /** Keep every workspace (for debugging). @default false: kept only for failed runs */
  readonly keepWorkspaces?: boolean;
  readonly logger: Logger;
  /** Also writes each run's output here (e.g. the terminal for `keelson run`). */
  readonly echo?: (text: string) => void;
  /** Called when a run reaches a terminal phase. */
  readonly onRunFinished?: (run: RunRecord) => void | Promise<void>;
  /** Names the stage a run is in, for a progress line. */
  readonly onStage?: (runId: RunId, stage: string) => void;
  /** Called when a run starts (commit statuses: pending). Awaited; must not throw. */
  readonly onRunStarted?: (run: RunRecord) => void | Promise<void>;
  /** Runs going at once across all watches; the others wait `queued`. Runs of one watch are
   * always in order (the watcher starts one at a time). @default 1 */
  readonly workers?: number;
}

/**
 * Turns a commit into a run: records it (and the commits coalesced into it), materialises the
 * committed tree in a fresh workspace, hands it to the executor, stores the log and the result.
 * It never throws for a failed run; the outcome says how it went.
 */
export class PipelineRunner {
  private readonly retries = new Map<string, RunId>();
  private readonly givenUp = new Set<string>();
  private readonly slots: Slots;

  constructor(private readonly options: PipelineRunnerOptions) {
    this.slots = new Slots(options.workers ?? 1);
  }

  /**
   * Takes over runs left `queued` or `running` by a process that died (kill -9, power loss):
   * ends every child process group recorded with them (SIGTERM, then SIGKILL), removes their
   * workspace and scratch files, and marks them interrupted. A build run is retried once (see
   * resume()); a retry that is interrupted again is not retried a second time. Runs whose owner
   * is still alive (another replica on the same Redis) are left alone.
   */
  async recoverInterruptedRuns(): Promise<RunRecord[]> {
    const { store, logger } = this.options;
    const unfinished = [...(await store.listRuns({ phase: 'running', limit: 10_000 })), ...(await store.listRuns({ phase: 'queued', limit: 10_000 }))];
    const recovered: RunRecord[] = [];
    for (const run of unfinished) {
      if (run.owner !== undefined && run.owner !== store.owner && (await this.ownerStaysAlive(run.owner))) {
        logger.info({ run: run.id, watch: run.watch, owner: run.owner }, 'run belongs to a live process; not recovering it');
        continue;
      }
      for (const group of run.processes ?? []) {
        const ended = await endProcessGroup(group, { graceMs: KILL_GRACE_MS });
        logger.debug({ run: run.id, pid: group.pid, startTime: group.startTime, found: ended.found }, 'process group of an interrupted run');
        if (ended.found > 0) logger.warn({ run: run.id, pid: group.pid, command: group.command, processes: ended.found, left: ended.left }, 'ended processes of an interrupted run');
      }
      const willRetry = run.kind === 'build' && !run.retryOf;
      let record: RunRecord;
      try {
        record = await store.transitionRun(run.id, 'interrupted', RunReason.ProcessDied,
          willRetry ? 'keelson stopped while this run was going; it is retried once' : 'keelson stopped while this run was going');
      } catch (error) {
        if (isKeelsonError(error) && error.code === 'KEELSON_RUN_FINISHED') continue; // finished meanwhile by its owner
        throw error;
      }
      await this.removeScratch(run.id);
      recovered.push(record);
      if (run.kind === 'build') {
        const key = retryKey(run.watch, run.commit);
        if (run.retryOf) this.givenUp.add(key);
        else this.retries.set(key, run.id);
      }
      logger.warn({ run: run.id, kind: run.kind, watch: run.watch, commit: run.commit, retry: willRetry }, 'run was interrupted');
    }
    for (const corrupt of await store.corruptRuns()) {
      // Nothing of it can be trusted, not even its processes; it stays listed until moved away.
      logger.warn({ run: corrupt.id, file: corrupt.where, problem: corrupt.problem }, 'run record is corrupt; move it away');
      await this.removeScratch(corrupt.id);
    }
    return recovered;
  }

  /** Whether a run's owner is alive; one that was killed may look alive until its key's TTL
   * ran out (a new leader starts sooner than that), so that long is waited for. */
  private async ownerStaysAlive(owner: string): Promise<boolean> {
    const { store } = this.options;
    const deadline = Date.now() + store.ownerTtlMs;
    for (;;) {
      if (!(await store.ownerAlive(owner))) return false;
      if (Date.now() >= deadline) return true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, store.ownerTtlMs)));
    }
  }

  /**
   * What a watch resumes from after a restart: the commit of an interrupted run to retry, and
   * the newest commit whose run finished (also when keelson died before the watch's state was
   * written, so that it is not run a second time).
   */
  async resume(watchKey: string): Promise<{ retry?: string; finished?: { commit: string; at: string } }> {
    let retry: string | undefined;
    for (const key of this.retries.keys()) {
      const [watch, commit] = key.split('\u0000');
      if (watch === watchKey) retry = commit;
    }
    const runs = await this.options.store.listRuns({ watch: watchKey, limit: 100 });
    const last = runs.find((run) => run.kind === 'build' && (run.phase === 'succeeded' || run.phase === 'failed' || run.phase === 'cancelled'));
    return {
      ...(retry !== undefined ? { retry } : {}),
      ...(last?.finishedAt ? { finished: { commit: last.commit, at: last.finishedAt } } : {}),
    };
  }

  /** Commits of the watch recorded as skipped lately (a backlog is at most 100 of them plus a summary). */
  private async recordedSkips(watchKey: string): Promise<Set<string>> {
    const runs = await this.options.store.listRuns({ watch: watchKey, phase: 'skipped', limit: 250 });
    return new Set(runs.map((run) => run.commit));
  }

  /** The workspace and the temp dirs a run leaves while it is going. */
  private async removeScratch(id: string): Promise<void> {
    await rm(path.join(this.options.workspaceDir, id), { recursive: true, force: true });
    const prefixes = [`keelson-push-${id}-`, `keelson-deploy-${id}-docker-`];
    for (const name of await readdir(tmpdir()).catch((): string[] => [])) {
      if (prefixes.some((prefix) => name.startsWith(prefix))) await rm(path.join(tmpdir(), name), { recursive: true, force: true });
    }
  }

  async trigger(event: PipelineEvent, signal: AbortSignal): Promise<PipelineOutcome> {
    const { store, logger } = this.options;
    const base = { kind: 'build' as RunKind, watch: event.watch.key, repo: event.watch.repo, branch: event.branch, executor: this.options.executor.kind };
    const skipped = event.skipped.filter((commit) => !this.givenUp.delete(retryKey(event.watch.key, commit)));
    // A keelson killed after writing some of these and before the run itself sees the same
    // backlog again on its next start: what is already recorded is not recorded twice.
    const recorded = skipped.length > 0 || event.skippedOmitted ? await this.recordedSkips(event.watch.key) : new Set<string>();
    for (const commit of skipped.filter((c) => !recorded.has(c))) {
      await store.createRun({
        ...base, id: newRunId(), commit, phase: 'skipped', reason: RunReason.Coalesced,
        message: `newer commit ${event.commit.slice(0, 12)} was built instead`,
      });
    }
    const key = retryKey(event.watch.key, event.commit);
    if (this.givenUp.has(key)) {
      this.givenUp.delete(key);
      logger.warn({ watch: event.watch.key, commit: event.commit }, 'not retrying a run that was interrupted twice');
      return { ok: false };
    }
    const retryOf = this.retries.get(key);
    this.retries.delete(key);

    const id = newRunId();
    if (event.skippedOmitted && !recorded.has(event.skippedOmitted.newest)) {
      const { count, newest } = event.skippedOmitted;
      await store.createRun({
        ...base, id: newRunId(), commit: newest, phase: 'skipped', reason: RunReason.Coalesced,
        message: `${count} older commit(s) up to ${newest.slice(0, 12)} were not built either (too many to list one by one); newer commit ${event.commit.slice(0, 12)} was built instead`,
      });
    }
    // Counted before the record is written: whoever sees the run queued sees it in the gauge too.
    runQueueLength.inc();
    try {
      await store.createRun({ ...base, id, commit: event.commit, phase: 'queued', reason: RunReason.Queued, message: 'waiting for a worker', retryOf, skippedCommits: skipped.length > 0 ? skipped : undefined });
    } catch (error) {
      runQueueLength.dec();
      throw error;
    }
    const log = logger.child({ run: id, watch: event.watch.key, commit: event.commit.slice(0, 12) });
    let release: () => void;
    try {
      release = await this.slots.acquire(signal);
    } catch {
      runQueueLength.dec();
      const [phase, reason, message] = isSuperseded(signal.reason)
        ? ['cancelled', RunReason.Superseded, `${signal.reason.message} before it started`] as const
        : ['interrupted', RunReason.Shutdown, 'keelson was stopped before this run started'] as const;
      await this.options.onRunFinished?.(await store.transitionRun(id, phase, reason, message));
      return { ok: false, runId: id };
    }
    runQueueLength.dec();
    try {
      return await this.runStarted(event, id, log, signal);
    } finally {
      release();
    }
  }

  private async runStarted(event: PipelineEvent, id: RunId, log: Logger, signal: AbortSignal): Promise<PipelineOutcome> {
    const { store } = this.options;
    const started = await store.transitionRun(id, 'running', RunReason.Started, `running ${event.commit.slice(0, 12)}`);
    await this.options.onRunStarted?.(started);
    log.info('run started');

    const workspace = path.join(this.options.workspaceDir, id);
    let appending: Promise<void> = Promise.resolve();
    // The terminal gets the same redaction as the store: on the stream, not chunk by chunk.
    const echo = new StreamRedactor();
    const sink = (text: string): void => {
      if (this.options.echo) this.options.echo(echo.push(text));
      appending = appending.then(() => store.appendLog(id, text)).catch((error: unknown) => {
        log.error({ err: messageOf(error) }, 'cannot store run log');
      });
    };

    let result: ExecutionResult;
    try {
      result = await this.execute(event, id, workspace, sink, signal);
    } catch (error) {
      result = { ok: false, reason: RunReason.ExecutorError, message: messageOf(error) };
    }
    await appending;
    if (this.options.echo) this.options.echo(echo.flush());
    let phase: RunPhase = result.ok ? 'succeeded' : 'failed';
    if (!result.ok && signal.aborted && result.reason !== RunReason.TimedOut) {
      if (isSuperseded(signal.reason)) {
        phase = 'cancelled';
        result = { ...result, reason: RunReason.Superseded, message: signal.reason.message };
      } else {
        phase = 'interrupted';
        result = { ...result, reason: RunReason.Shutdown, message: 'keelson was stopped while this run was going' };
      }
    }
    const finished = await store.transitionRun(id, phase, result.reason, result.message, { exitCode: result.exitCode, image: result.image });
    log[result.ok ? 'info' : 'warn']({ phase, reason: result.reason, detail: result.message, digest: result.image?.digest }, 'run finished');
    // A failed run's workspace stays for inspection; `keelson runs` shows where.
    const keep = this.options.keepWorkspaces === true || phase === 'failed';
    if (!keep) await rm(workspace, { recursive: true, force: true });
    await this.options.onRunFinished?.(finished);
    return { ok: result.ok, runId: id };
  }

  private async execute(event: PipelineEvent, id: RunId, workspace: string, sink: (text: string) => void, signal: AbortSignal): Promise<ExecutionResult> {
    await mkdir(workspace, { recursive: true });
    this.options.onStage?.(id, `getting the tree of ${event.commit.slice(0, 12)}`);
    try {
      await this.options.materializer.materialize(event.watch, event.commit, workspace, signal);
    } catch (error) {
      return { ok: false, reason: RunReason.SourceFailed, message: `cannot get the tree of ${event.commit.slice(0, 12)}: ${messageOf(error)}` };
    }
    let pipeline: PipelineSpec;
    const fromRepository = this.options.pipeline === undefined;
    try {
      pipeline = this.options.pipeline ?? (await this.repositoryPipeline(workspace));
    } catch (error) {
      return { ok: false, reason: RunReason.InvalidPipeline, message: isKeelsonError(error) ? error.message : messageOf(error) };
    }
    if (pipeline.steps.length === 0 && !pipeline.build) {
      return { ok: false, reason: RunReason.InvalidPipeline, message: 'the pipeline has no steps and no build: pass --step or commit a keelson.yaml with steps:' };
    }
    return this.options.executor.execute({
      runId: id,
      source: { dir: workspace, repo: event.watch.repo, branch: event.branch, commit: event.commit },
      pipeline,
      ...(fromRepository ? { repositoryPipeline: { allowBuilder: this.options.allowBuilder?.(event.watch.key) ?? [] } } : {}),
      registry: this.options.registry,
      log: sink,
      ...(this.options.onStage ? { stage: (text: string) => this.options.onStage!(id, text) } : {}),
      signal,
      recordProcess: (process) => this.options.store.recordRunProcess(id, process),
    });
  }

  /** The committed keelson.yaml, read from the tree only: a symlink out of it is refused, never followed. */
  private async repositoryPipeline(workspace: string): Promise<PipelineSpec> {
    let text: string;
    try {
      text = await readTreeFile(workspace, REPOSITORY_PIPELINE_FILE, 'the repository pipeline');
    } catch (error) {
      if (error instanceof TreePathError && !isPresent(path.join(workspace, REPOSITORY_PIPELINE_FILE))) throw new Error(`no pipeline: pass --step "CMD" or --config FILE, or commit a ${REPOSITORY_PIPELINE_FILE} with steps:`);
      throw error;
    }
    return parseRepositoryPipeline(text, REPOSITORY_PIPELINE_FILE, this.options.operatorKubernetes);
  }
}

/** Whether anything (a file, a directory, a symlink to anything) is at `file`. */
function isPresent(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function retryKey(watch: string, commit: string): string {
  return `${watch}\u0000${commit}`;
}
