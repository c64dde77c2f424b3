import { SupersededError, type Duration } from '../domain/index.js';
import { InputError, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log/index.js';
import type { StateStore } from '../store/index.js';
import { LocalHeadReader } from './local-head-reader.js';
import { RemoteHeadReader } from './remote-head-reader.js';
import { backoffMs, parseSchedule, type Schedule } from './schedule.js';
import { WatchState } from './schema.js';
import type { CommitHistory, Head, HeadReader, PipelineTrigger, TriggerEvent, WatchSpec } from './types.js';

export interface GitWatcherOptions {
  readonly watches: readonly WatchSpec[];
  readonly trigger: PipelineTrigger;
  /** Holds the last done commit per watch under `watch:<key>`, so a restart resumes. */
  readonly state: StateStore;
  /** `@every 30s`, a duration, or a cron expression, for every watch that names none of its own
   * (WatchSpec.schedule). @default '@every 30s' */
  readonly schedule?: string;
  /** Random delay added to each tick, as a fraction of the interval, so that many watchers do
   * not poll one server in step. @default 0.1 */
  readonly jitter?: number;
  /** Upper bound of that random delay for cron schedules. @default 30 seconds */
  readonly maxCronJitter?: Duration;
  /** Longest wait between polls after failures (never below one interval). @default 10 minutes */
  readonly maxBackoff?: Duration;
  /** @default createHeadReader: ls-remote for remote watches, rev-parse for local ones */
  readonly headReader?: (spec: WatchSpec) => HeadReader;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** @default Math.random */
  readonly random?: () => number;
  /** Cancel a running build when a newer commit of the same watch arrives (the signal's reason
   * is a SupersededError), instead of letting it finish. @default false: coalesce */
  readonly supersede?: boolean;
  /** Lists the commits between the last one done and a new head, so that every commit that is
   * not built is recorded as skipped, also those no poll saw (landed while keelson was down, or
   * between two polls). @default none: only commits that polls saw are recorded */
  readonly history?: CommitHistory;
  /** Skipped commits recorded one by one; beyond that, one summary record. @default 100 */
  readonly skippedLimit?: number;
}

const DEFAULTS = {
  schedule: '@every 30s',
  jitter: 0.1,
  maxCronJitterMs: 30_000,
  maxBackoffMs: 600_000,
  skippedLimit: 100,
} as const;

/** What the status page and tests see of one watch. */
export interface WatchStatus {
  readonly key: string;
  readonly display: string;
  /** The last commit whose run ended */
  readonly lastDone?: string;
  /** The commit being built */
  readonly running?: string;
  /** The newest commit seen while building, built next */
  readonly pending?: string;
  /** Commits seen while building that will be recorded as skipped */
  readonly skipped: readonly string[];
  /** Failed polls in a row */
  readonly failures: number;
  readonly lastError?: string;
  /** The wait before the next poll caused by failures, without jitter; 0 when healthy */
  readonly backoffMs: number;
  /** `@every 30s` or the cron line the watches are polled on */
  readonly schedule: string;
  /** ISO-8601 time of the next scheduled poll; absent while a poll runs or when stopped */
  readonly nextCheckAt?: string;
}

interface Run {
  readonly commit: string;
  /** Aborted on shutdown (with the watcher) or when a newer commit supersedes this one. */
  readonly abort: AbortController;
  done: Promise<void>;
}

interface Watch {
  readonly spec: WatchSpec;
  /** Its own schedule, or the watcher's */
  readonly schedule: Schedule;
  readonly reader: HeadReader;
  readonly log: Logger;
  loaded: boolean;
  lastDone?: string;
  /** The commit of a run a crash cut off, run once more before anything newer */
  retry?: string;
  running?: Run;
  pending?: Head;
  skipped: string[];
  failures: number;
  lastError?: string;
  polling?: Promise<boolean>;
  timer?: NodeJS.Timeout;
  /** Epoch ms the timer fires at */
  nextAt?: number;
}

/** The default HeadReader for a spec. */
export function createHeadReader(spec: WatchSpec): HeadReader {
  switch (spec.kind) {
    case 'remote':
      return new RemoteHeadReader(spec);
    case 'local':
      return new LocalHeadReader(spec);
  }
}

export function watchStateKey(spec: WatchSpec): string {
  return `watch:${spec.key}`;
}

/**
 * Polls each watch on its schedule and triggers the pipeline for new commits, one run per watch
 * at a time. Commits that land during a run are coalesced: only the newest is built next, the
 * ones in between are passed as `skipped`. A commit is done when its run ends, also when the run
 * failed, so a failing commit is not rebuilt on every poll; only a new commit triggers again.
 * Poll failures are logged once each and back the watch off; they never trigger a run.
 */
export class GitWatcher {
  private readonly watches: Watch[];
  private readonly trigger: PipelineTrigger;
  private readonly state: StateStore;
  private readonly schedule: Schedule;
  private readonly jitter: number;
  private readonly maxCronJitterMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly runEnded = new Set<(ok: boolean) => void>();
  private started = false;
  private readonly supersede: boolean;
  private readonly history: CommitHistory | undefined;
  private readonly skippedLimit: number;

  constructor(options: GitWatcherOptions) {
    this.trigger = options.trigger;
    this.state = options.state;
    this.jitter = options.jitter ?? DEFAULTS.jitter;
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new InputError('jitter', `${this.jitter} is not a fraction between 0 and 1`);
    this.maxCronJitterMs = options.maxCronJitter?.milliseconds ?? DEFAULTS.maxCronJitterMs;
    this.maxBackoffMs = options.maxBackoff?.milliseconds ?? DEFAULTS.maxBackoffMs;
    this.random = options.random ?? Math.random;
    this.supersede = options.supersede ?? false;
    this.history = options.history;
    this.skippedLimit = options.skippedLimit ?? DEFAULTS.skippedLimit;
    this.log = options.logger ?? silentLogger();
    const readerFor = options.headReader ?? createHeadReader;
    this.schedule = parseSchedule(options.schedule ?? DEFAULTS.schedule);
    const seen = new Set<string>();
    this.watches = options.watches.map((spec) => {
      if (seen.has(spec.key)) throw new InputError(spec.display, 'is watched twice');
      seen.add(spec.key);
      const schedule = spec.schedule === undefined ? this.schedule : parseSchedule(spec.schedule, `${spec.display}: schedule`);
      return { spec, schedule, reader: readerFor(spec), log: this.log.child({ watch: spec.display }), loaded: false, skipped: [], failures: 0 };
    });
  }

  /** Polls every watch now, then on the schedule. */
  start(): void {
    if (this.started || this.abort.signal.aborted) return;
    this.started = true;
    this.log.info({ watches: this.watches.length, schedule: this.schedule.text }, 'git watcher started');
    for (const watch of this.watches) void this.pollWatch(watch).finally(() => this.scheduleNext(watch));
  }

  /**
   * `--once`: polls every watch once, triggers what is new, waits for those runs and resolves
   * true when every poll and every run succeeded.
   */
  async runOnce(): Promise<boolean> {
    const results: boolean[] = [];
    const collect = (ok: boolean) => results.push(ok);
    this.runEnded.add(collect);
    try {
      const polls = await Promise.all(this.watches.map((w) => this.pollWatch(w)));
      await this.idle();
      return polls.every(Boolean) && results.every(Boolean);
    } finally {
      this.runEnded.delete(collect);
    }
  }

  /** Polls one watch (by key) or all now, off schedule; resolves when the polls are done (a
   * run it triggers may still be going: see idle()). */
  async pollOnce(key?: string): Promise<void> {
    const chosen = key === undefined ? this.watches : this.watches.filter((w) => w.spec.key === key);
    if (chosen.length === 0) throw new InputError(key ?? '', 'is not a watched key');
    await Promise.all(chosen.map((w) => this.pollWatch(w)));
  }

  /** Resolves when no poll and no run is going, including the runs of coalesced commits. */
  async idle(): Promise<void> {
    await Promise.all(this.watches.map(async (w) => {
      while (w.polling || w.running) {
        await w.polling;
        await w.running?.done;
      }
    }));
  }

  /** Stops the schedules, aborts running triggers through their signal and waits for them. An
   * aborted run is not marked done, so the next start builds its commit again. */
  async stop(): Promise<void> {
    if (!this.abort.signal.aborted) {
      this.abort.abort(new Error('the git watcher is stopping'));
      for (const watch of this.watches) clearTimeout(watch.timer);
    }
    await this.idle();
    for (const schedule of new Set([this.schedule, ...this.watches.map((w) => w.schedule)])) schedule.dispose();
    if (this.started) this.log.info('git watcher stopped');
  }

  status(): WatchStatus[] {
    return this.watches.map((w) => ({
      key: w.spec.key,
      display: w.spec.display,
      lastDone: w.lastDone,
      running: w.running?.commit,
      pending: w.pending?.commit,
      skipped: [...w.skipped],
      failures: w.failures,
      lastError: w.lastError,
      backoffMs: backoffMs(w.failures, w.schedule.intervalMs(), this.maxBackoffMs),
      schedule: w.schedule.text,
      ...(w.timer && w.nextAt !== undefined ? { nextCheckAt: new Date(w.nextAt).toISOString() } : {}),
    }));
  }

  private scheduleNext(watch: Watch): void {
    if (this.abort.signal.aborted) return;
    const { schedule } = watch;
    const interval = schedule.intervalMs();
    const jitterCap = this.jitter * interval;
    const jitter = this.random() * (schedule.kind === 'cron' ? Math.min(jitterCap, this.maxCronJitterMs) : jitterCap);
    const delay = Math.max(schedule.nextDelayMs() + jitter, backoffMs(watch.failures, interval, this.maxBackoffMs));
    watch.nextAt = Date.now() + delay;
    watch.timer = setTimeout(() => {
      watch.timer = undefined;
      watch.nextAt = undefined;
      void this.pollWatch(watch).finally(() => this.scheduleNext(watch));
    }, delay);
  }

  /** One poll at a time per watch: a second caller shares the poll in progress. Resolves
   * false when the poll failed. */
  private pollWatch(watch: Watch): Promise<boolean> {
    if (this.abort.signal.aborted) return Promise.resolve(false);
    watch.polling ??= this.poll(watch).finally(() => {
      watch.polling = undefined;
    });
    return watch.polling;
  }

  private async poll(watch: Watch): Promise<boolean> {
    const signal = this.abort.signal;
    let head: Head;
    try {
      if (!watch.loaded) await this.load(watch);
      head = await watch.reader.readHead(signal);
    } catch (error) {
      if (signal.aborted) return false;
      watch.failures += 1;
      watch.lastError = messageOf(error);
      const retryInMs = backoffMs(watch.failures, watch.schedule.intervalMs(), this.maxBackoffMs);
      watch.log.warn({ code: (error as { code?: unknown }).code, reason: watch.lastError, failures: watch.failures, retryInMs }, 'git poll failed');
      return false;
    }
    if (signal.aborted) return false; // stopping: a head read just before must not start a run
    if (watch.failures > 0) watch.log.info({ failures: watch.failures }, 'git poll recovered');
    watch.failures = 0;
    watch.lastError = undefined;
    this.consider(watch, head);
    return true;
  }

  private async load(watch: Watch): Promise<void> {
    const raw = await this.state.getState<unknown>(watchStateKey(watch.spec));
    let doneAt: string | undefined;
    if (raw !== undefined) {
      const parsed = WatchState.safeParse(raw);
      if (parsed.success) {
        watch.lastDone = parsed.data.commit;
        doneAt = parsed.data.at;
      } else {
        watch.log.warn({ key: watchStateKey(watch.spec) }, 'ignoring unreadable watch state');
      }
    }
    const resume = await this.trigger.resume?.(watch.spec.key);
    const finished = resume?.finished;
    if (finished && finished.commit !== watch.lastDone && (doneAt === undefined || Date.parse(finished.at) > Date.parse(doneAt))) {
      // keelson died after the run ended but before the state was written: it is done.
      watch.log.info({ commit: finished.commit }, 'resuming after the last finished run');
      watch.lastDone = finished.commit;
    }
    if (resume?.retry !== undefined && resume.retry !== watch.lastDone) watch.retry = resume.retry;
    watch.loaded = true;
  }

  private consider(watch: Watch, head: Head): void {
    if (watch.running) {
      // Already building or already next: nothing new. Otherwise the newest wins and the one
      // it replaces is recorded as skipped.
      if (head.commit === watch.running.commit || head.commit === watch.pending?.commit) return;
      if (watch.pending) watch.skipped.push(watch.pending.commit);
      watch.pending = head;
      if (this.supersede) {
        watch.log.info({ commit: head.commit, running: watch.running.commit }, 'newer commit supersedes the running build');
        watch.running.abort.abort(new SupersededError(head.commit));
      } else {
        watch.log.info({ commit: head.commit, running: watch.running.commit }, 'commit queued behind the running build');
      }
      return;
    }
    if (watch.retry !== undefined) {
      // The interrupted run goes first, as it would have; the head follows it.
      const retry: Head = { branch: head.branch, commit: watch.retry };
      watch.retry = undefined;
      if (head.commit !== retry.commit) watch.pending = head;
      watch.log.info({ commit: retry.commit }, 'retrying the run a crash cut off');
      this.startRun(watch, retry, [], true);
      return;
    }
    if (head.commit === watch.lastDone) return;
    this.startRun(watch, head, []);
  }

  private startRun(watch: Watch, head: Head, skipped: readonly string[], retry = false): void {
    const abort = new AbortController();
    const run: Run = { commit: head.commit, abort, done: Promise.resolve() };
    watch.running = run;
    run.done = this.execute(watch, head, skipped, AbortSignal.any([this.abort.signal, abort.signal]), retry);
  }

  /** The commits between the last one done and `head` that are not built; polls saw `seen`. */
  private async skippedBefore(watch: Watch, head: Head, seen: readonly string[], signal: AbortSignal): Promise<Pick<TriggerEvent, 'skipped' | 'skippedOmitted'>> {
    if (!this.history || watch.lastDone === undefined) return { skipped: seen };
    try {
      const range = await this.history.between(watch.spec, watch.lastDone, head.commit, this.skippedLimit, signal);
      const listed = new Set(range.commits);
      // A commit a poll saw but the history does not have was force-pushed away: still recorded.
      const skipped = [...seen.filter((commit) => !listed.has(commit)), ...range.commits];
      return { skipped, ...(range.omitted > 0 && range.newestOmitted ? { skippedOmitted: { count: range.omitted, newest: range.newestOmitted } } : {}) };
    } catch (error) {
      watch.log.warn({ commit: head.commit, reason: messageOf(error) }, 'cannot list the commits since the last run; recording only those polls saw as skipped');
      return { skipped: seen };
    }
  }

  private async execute(watch: Watch, head: Head, seen: readonly string[], runSignal: AbortSignal, retry: boolean): Promise<void> {
    const signal = this.abort.signal;
    let ok = false;
    try {
      const skipped = retry ? { skipped: [] } : await this.skippedBefore(watch, head, seen, runSignal);
      watch.log.info({ commit: head.commit, branch: head.branch, skipped: skipped.skipped.length }, 'new commit, triggering pipeline');
      ({ ok } = await this.trigger.trigger({ watch: watch.spec, commit: head.commit, branch: head.branch, ...skipped }, runSignal));
    } catch (error) {
      if (!runSignal.aborted) watch.log.error({ commit: head.commit, reason: messageOf(error) }, 'pipeline trigger failed');
    }
    if (signal.aborted) {
      watch.running = undefined;
      for (const report of this.runEnded) report(false);
      return;
    }
    watch.lastDone = head.commit;
    try {
      const value: WatchState = { commit: head.commit, branch: head.branch, ok, at: new Date().toISOString() };
      await this.state.setState(watchStateKey(watch.spec), value);
    } catch (error) {
      watch.log.error({ commit: head.commit, reason: messageOf(error) }, 'cannot record the built commit');
    }
    for (const report of this.runEnded) report(ok);
    watch.running = undefined;
    const next = watch.pending;
    const nextSkipped = watch.skipped;
    watch.pending = undefined;
    watch.skipped = [];
    if (next && next.commit !== watch.lastDone && !signal.aborted) this.startRun(watch, next, nextSkipped);
  }
}
