import { setMaxListeners } from 'node:events';
import { Duration } from '../domain/index.js';
import { InputError, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log/index.js';
import type { StateStore } from '../store/index.js';
import { parseSchedule, type Schedule } from './schedule.js';
import { StoredBaselines, type TargetBaseline } from './schema.js';
import type { ChangeListener, JobStatus, PollResult, RegistryChange, RegistryReader, WatchTarget } from './types.js';

export interface RegistryWatcherOptions {
  readonly reader: RegistryReader;
  /** Baselines that survive a restart (keys `registry:...`). @default memory only */
  readonly store?: StateStore;
  /** @default a silent logger */
  readonly logger?: Logger;
  /** For targets without a schedule. @default `@every 1m`, Keel's default pollSchedule */
  readonly defaultSchedule?: Schedule;
  /** Wait after a failed check, doubled per further failure in a row. @default 10s */
  readonly backoff?: Duration;
  /** The longest backoff. @default 10m */
  readonly maxBackoff?: Duration;
  /** Jobs checked at the same time. @default 8 */
  readonly concurrency?: number;
  /** Time limit of one check (one registry request, with the client's own retries). @default 2m */
  readonly checkTimeout?: Duration;
  /** The clock, epoch ms; tests move it to make jobs due. @default Date.now */
  readonly now?: () => number;
}

const DEFAULTS = {
  defaultSchedule: '@every 1m',
  backoff: Duration.ofSeconds(10),
  maxBackoff: Duration.ofSeconds(600),
  concurrency: 8,
  checkTimeout: Duration.ofSeconds(120),
} as const;

const KNOWN_OPTIONS = new Set(['reader', 'store', 'logger', 'defaultSchedule', 'backoff', 'maxBackoff', 'concurrency', 'checkTimeout', 'now']);

// setTimeout stores its delay in 32 bits; a monthly cron is further away than that.
const MAX_TIMER_MS = 2 ** 31 - 1;

const REPOSITORY = /^[A-Za-z0-9.-]+(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,}$/;

/** One registry request per cycle, shared by every target that wants the same thing. */
interface Job {
  readonly key: string;
  readonly mode: 'tags' | 'digest';
  readonly repository: string;
  /** Digest mode: the tag whose digest is followed */
  readonly tag?: string;
  readonly stateKey: string;
  readonly targets: Map<string, WatchTarget>;
  schedule: Schedule;
  nextDue: number;
  failures: number;
  lastError?: string;
  lastCheckedAt?: number;
  /** Loaded from the store on the first check */
  baselines?: Map<string, TargetBaseline>;
  running?: Promise<RegistryChange[]>;
  /** A check asked for while one was running (a webhook): runs right after it */
  again?: Promise<RegistryChange[]>;
}

/**
 * Watches registries for the targets it is given: ONE poll job per distinct repository (tag
 * mode: list tags, each target's policy picks) or repository:tag (digest mode: HEAD the
 * manifest), at the most frequent schedule any of its targets asks for. A new digest or a
 * newer tag is an event to subscribers. Baselines live in the StateStore, so a change made
 * while keelson was down fires once after a restart and a restart alone fires nothing.
 *
 * A failing repository (401, 404, unreachable) is logged and backs off; other jobs go on.
 * `pollOnce()` runs the due jobs once without timers, for tests and benchmarks; `start()` runs
 * them on their schedules.
 */
export class RegistryWatcher {
  private readonly reader: RegistryReader;
  private readonly store?: StateStore;
  private readonly logger: Logger;
  private readonly defaultSchedule: Schedule;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly concurrency: number;
  private readonly checkTimeoutMs: number;
  private readonly now: () => number;

  private readonly jobs = new Map<string, Job>();
  /** target id -> job key, or undefined for a target that is not watched (policy `never`) */
  private readonly targetJobs = new Map<string, string | undefined>();
  private readonly listeners = new Set<ChangeListener>();
  private lifecycle = listenable(new AbortController());
  private started = false;
  private timer?: NodeJS.Timeout;

  constructor(options: RegistryWatcherOptions) {
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`RegistryWatcher: unknown option "${key}" (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
    if (!options.reader) throw new TypeError('RegistryWatcher: a reader is required');
    this.reader = options.reader;
    this.store = options.store;
    this.logger = (options.logger ?? silentLogger()).child({ part: 'registry-watch' });
    this.defaultSchedule = options.defaultSchedule ?? parseSchedule(DEFAULTS.defaultSchedule);
    this.backoffMs = (options.backoff ?? DEFAULTS.backoff).milliseconds;
    this.maxBackoffMs = Math.max(this.backoffMs, (options.maxBackoff ?? DEFAULTS.maxBackoff).milliseconds);
    this.concurrency = options.concurrency ?? DEFAULTS.concurrency;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new TypeError(`RegistryWatcher: concurrency must be a whole number >= 1, got ${options.concurrency}`);
    this.checkTimeoutMs = (options.checkTimeout ?? DEFAULTS.checkTimeout).milliseconds;
    this.now = options.now ?? Date.now;
  }

  /** Calls `listener` for every change; returns the function that unsubscribes it. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts watching a target, or updates it when its id is known (a rollout changed its
   * current tag, its policy changed...). A new job is checked at once (on the next poll).
   * Throws InputError for a target that cannot be watched, changing nothing.
   */
  addTarget(target: WatchTarget): void {
    validateTarget(target);
    const mode = target.current.includes(':') ? 'none' // pinned by digest: nothing can change
      : target.policy.watchMode(target.current, { matchTag: target.matchTag, matchPreRelease: target.matchPreRelease });
    const key = mode === 'none' ? undefined : mode === 'tags' ? target.repository : `${target.repository}:${target.current}`;
    if (this.targetJobs.has(target.id) && this.targetJobs.get(target.id) !== key) this.removeTarget(target.id);
    this.targetJobs.set(target.id, key);
    if (key === undefined) return;

    const now = this.now();
    let job = this.jobs.get(key);
    if (!job) {
      job = {
        key,
        mode: mode === 'tags' ? 'tags' : 'digest',
        repository: target.repository,
        tag: mode === 'digest' ? target.current : undefined,
        stateKey: mode === 'tags' ? `registry:tags:${target.repository}` : `registry:digest:${key}`,
        targets: new Map(),
        schedule: target.schedule ?? this.defaultSchedule,
        nextDue: now,
        failures: 0,
      };
      this.jobs.set(key, job);
      this.logger.debug({ job: key, mode: job.mode }, 'poll job added');
    }
    const previous = job.targets.get(target.id);
    if (previous && (previous.current !== target.current || previous.currentDigest !== target.currentDigest)) {
      job.baselines?.delete(target.id); // rolled out or edited: its own current state is the baseline now
    }
    job.targets.set(target.id, target);
    this.reschedule(job, now);
    this.arm();
  }

  /** Same as addTarget: the id says which target. */
  updateTarget(target: WatchTarget): void {
    this.addTarget(target);
  }

  /** Stops watching a target; a job without targets is dropped. Unknown ids are ignored. */
  removeTarget(id: string): void {
    const key = this.targetJobs.get(id);
    this.targetJobs.delete(id);
    const job = key === undefined ? undefined : this.jobs.get(key);
    if (!job) return;
    job.targets.delete(id);
    if (job.targets.size === 0) {
      this.jobs.delete(job.key);
      this.logger.debug({ job: job.key }, 'poll job removed');
    } else {
      this.reschedule(job, this.now());
    }
    this.arm();
  }

  /**
   * Checks now, out of schedule and regardless of backoff (a webhook said an image was
   * pushed): every job of `repository` (`host/path`), or every job. A job that is running is
   * checked again right after. Resolves to the changes found (also sent to subscribers).
   */
  async checkNow(repository?: string): Promise<RegistryChange[]> {
    const jobs = [...this.jobs.values()].filter((job) => repository === undefined || job.repository === repository);
    const results = await this.runAll(jobs);
    return results.flat();
  }

  /** Checks every job that is due now, once, and resolves when all are done. No timers. */
  async pollOnce(): Promise<PollResult> {
    const now = this.now();
    const due = [...this.jobs.values()].filter((job) => job.nextDue <= now && !job.running);
    const failuresBefore = due.map((job) => job.failures);
    const results = await this.runAll(due);
    const failed = due.filter((job, i) => job.failures > failuresBefore[i]!).length;
    return { checked: due.length, failed, changes: results.flat() };
  }

  /** Runs the jobs on their schedules until stop(). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.arm();
  }

  /** Stops the timers, aborts checks in flight and waits for them to end. start() may follow. */
  async stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lifecycle.abort();
    await Promise.allSettled([...this.jobs.values()].flatMap((job) => [job.running, job.again].filter(Boolean)));
    this.lifecycle = listenable(new AbortController());
  }

  /** The poll jobs and their state, for the status page. */
  status(): JobStatus[] {
    return [...this.jobs.values()].map((job) => ({
      key: job.key,
      mode: job.mode,
      repository: job.repository,
      ...(job.tag === undefined ? {} : { tag: job.tag }),
      schedule: job.schedule.text,
      targetIds: [...job.targets.keys()],
      nextCheckAt: new Date(job.nextDue).toISOString(),
      ...(job.lastCheckedAt === undefined ? {} : { lastCheckedAt: new Date(job.lastCheckedAt).toISOString() }),
      failures: job.failures,
      ...(job.lastError === undefined ? {} : { lastError: job.lastError }),
    }));
  }

  /** The job polls at the most frequent of its targets' schedules; a faster one applies at once. */
  private reschedule(job: Job, now: number): void {
    let fastest: Schedule | undefined;
    let fastestPeriod = Infinity;
    for (const target of job.targets.values()) {
      const schedule = target.schedule ?? this.defaultSchedule;
      const period = schedule.period(now);
      if (period < fastestPeriod) {
        fastest = schedule;
        fastestPeriod = period;
      }
    }
    if (!fastest || fastest.text === job.schedule.text) return;
    job.schedule = fastest;
    if (job.failures === 0 && job.lastCheckedAt !== undefined) job.nextDue = Math.min(job.nextDue, fastest.next(now));
  }

  private async runAll(jobs: readonly Job[]): Promise<RegistryChange[][]> {
    const results: RegistryChange[][] = new Array(jobs.length);
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await this.run(jobs[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, worker));
    return results;
  }

  private run(job: Job): Promise<RegistryChange[]> {
    if (job.running) {
      job.again ??= job.running.then(() => {
        job.again = undefined;
        return this.run(job);
      });
      return job.again;
    }
    const running = this.check(job).finally(() => {
      if (job.running === running) job.running = undefined;
      this.arm();
    });
    job.running = running;
    return running;
  }

  /** One check of one job; never rejects. */
  private async check(job: Job): Promise<RegistryChange[]> {
    const lifecycle = this.lifecycle.signal;
    // One controller per check, its timer and listener removed when the check ends (the
    // AbortSignal.timeout/any pair keeps both alive long after, thousands per hour).
    const check = new AbortController();
    const stop = () => check.abort(lifecycle.reason);
    lifecycle.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(() => check.abort(new Error(`no answer within ${this.checkTimeoutMs / 1000}s`)), this.checkTimeoutMs);
    const signal = check.signal;
    let observed: { tags: string[] } | { digest: string };
    try {
      if (!job.baselines) job.baselines = await this.loadBaselines(job);
      observed = job.mode === 'tags'
        ? { tags: await this.reader.listTags(job.repository, { signal }) }
        : { digest: await this.reader.manifestDigest(job.repository, job.tag!, { signal }) };
    } catch (error) {
      if (lifecycle.aborted) return []; // stopping: not the registry's fault
      this.failed(job, error);
      return [];
    } finally {
      clearTimeout(timer);
      lifecycle.removeEventListener('abort', stop);
    }
    const now = this.now();
    job.failures = 0;
    job.lastError = undefined;
    job.lastCheckedAt = now;
    job.nextDue = job.schedule.next(now);

    const { changes, dirty } = this.evaluate(job, observed);
    for (const change of changes) await this.deliver(change);
    // Saved after the subscribers ran: a crash in between fires the change again rather than never.
    if (dirty) await this.saveBaselines(job);
    return changes;
  }

  /** Compares what the registry has now with each target's baseline, and moves the baselines. */
  private evaluate(job: Job, observed: { tags: string[] } | { digest: string }): { changes: RegistryChange[]; dirty: boolean } {
    const baselines = job.baselines!;
    const grouped = new Map<string, { change: Omit<RegistryChange, 'targetIds'>; targetIds: string[] }>();
    let dirty = false;
    for (const id of baselines.keys()) {
      if (!job.targets.has(id)) {
        baselines.delete(id);
        dirty = true;
      }
    }
    for (const target of job.targets.values()) {
      const stored = baselines.get(target.id);
      // A stored baseline counts while the target still declares what it declared then; a
      // rollout or a hand edit since makes the target's own current tag/digest the baseline.
      const declared = stored !== undefined && stored.current === target.current
        && (target.currentDigest === undefined || target.currentDigest === stored.currentDigest);
      const currentDigest = target.currentDigest ?? (declared ? stored.currentDigest : undefined);
      let change: Omit<RegistryChange, 'targetIds'> | undefined;
      let next: TargetBaseline;
      if ('digest' in observed) {
        const baseline = declared ? stored.digest : target.currentDigest;
        if (baseline !== undefined && baseline !== observed.digest) {
          change = { repository: job.repository, oldTag: target.current, newTag: target.current, oldDigest: baseline, newDigest: observed.digest };
        }
        next = { current: target.current, currentDigest, tag: target.current, digest: observed.digest };
      } else {
        const baseline = declared ? stored.tag : target.current;
        const chosen = target.policy.choose(baseline, observed.tags, { matchTag: target.matchTag, matchPreRelease: target.matchPreRelease });
        if (chosen !== undefined && chosen !== baseline) {
          const oldDigest = baseline === target.current ? currentDigest : undefined;
          change = { repository: job.repository, oldTag: baseline, newTag: chosen, ...(oldDigest === undefined ? {} : { oldDigest }) };
        }
        next = { current: target.current, currentDigest, tag: change?.newTag ?? baseline };
      }
      if (!sameBaseline(stored, next)) {
        baselines.set(target.id, next);
        dirty = true;
      }
      if (change) {
        const groupKey = JSON.stringify([change.oldTag, change.newTag, change.oldDigest, change.newDigest]);
        const group = grouped.get(groupKey);
        if (group) group.targetIds.push(target.id);
        else grouped.set(groupKey, { change, targetIds: [target.id] });
      }
    }
    const changes = [...grouped.values()].map(({ change, targetIds }) => ({ targetIds, ...change }));
    return { changes, dirty };
  }

  private async deliver(change: RegistryChange): Promise<void> {
    this.logger.info({ repository: change.repository, oldTag: change.oldTag, newTag: change.newTag,
      oldDigest: change.oldDigest, newDigest: change.newDigest, targets: change.targetIds.length }, 'registry change');
    for (const listener of this.listeners) {
      try {
        await listener(change);
      } catch (error) {
        this.logger.error({ repository: change.repository, newTag: change.newTag, error: messageOf(error) }, 'registry change subscriber failed');
      }
    }
  }

  private failed(job: Job, error: unknown): void {
    const now = this.now();
    job.failures += 1;
    job.lastError = messageOf(error);
    job.lastCheckedAt = now;
    let delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(job.failures - 1, 30));
    // A 429 that says how long to wait (src/registry's RegistryRateLimitedError) is honoured.
    const retryAfterMs = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
    if (typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs)) delay = Math.max(delay, retryAfterMs);
    job.nextDue = Math.max(job.schedule.next(now), now + delay);
    this.logger.error({
      job: job.key,
      repository: job.repository,
      tag: job.tag,
      code: (error as { code?: unknown } | null)?.code,
      error: job.lastError,
      failures: job.failures,
      retryInSeconds: Math.round((job.nextDue - now) / 1000),
    }, 'registry check failed; backing off');
  }

  private async loadBaselines(job: Job): Promise<Map<string, TargetBaseline>> {
    if (!this.store) return new Map();
    const raw = await this.store.getState<unknown>(job.stateKey);
    if (raw === undefined) return new Map();
    const parsed = StoredBaselines.safeParse(raw);
    if (!parsed.success) {
      // A damaged record must not stop the watch: start from the targets' own current state.
      this.logger.warn({ job: job.key, key: job.stateKey, error: parsed.error.issues[0]?.message }, 'ignoring unreadable registry baseline');
      return new Map();
    }
    return new Map(Object.entries(parsed.data.targets));
  }

  private async saveBaselines(job: Job): Promise<void> {
    if (!this.store) return;
    try {
      await this.store.setState<StoredBaselines>(job.stateKey, { targets: Object.fromEntries(job.baselines!) });
    } catch (error) {
      // In memory the baseline moved, so this process will not fire twice; a restart might.
      this.logger.error({ job: job.key, key: job.stateKey, error: messageOf(error) }, 'saving registry baseline failed');
    }
  }

  /** One timer for the whole watcher, set for the earliest due job. */
  private arm(): void {
    if (!this.started) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    let earliest = Infinity;
    for (const job of this.jobs.values()) {
      if (!job.running && job.nextDue < earliest) earliest = job.nextDue;
    }
    if (earliest === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, earliest - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // re-armed also when nothing turned out due, or the loop would stop
      void this.pollOnce().finally(() => this.arm());
    }, delay);
  }
}

/** Every check in flight listens to the watcher's signal; as many as `concurrency` at once is no leak. */
function listenable(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}

function sameBaseline(a: TargetBaseline | undefined, b: TargetBaseline): boolean {
  return a !== undefined && a.current === b.current && a.currentDigest === b.currentDigest && a.tag === b.tag && a.digest === b.digest;
}

function validateTarget(target: WatchTarget): void {
  const where = `registry watch target "${target.id}"`;
  if (!target.id) throw new InputError('registry watch target', 'a target needs an id');
  if (!REPOSITORY.test(target.repository)) {
    throw new InputError(where, `repository "${target.repository}" is not host[:port]/path (e.g. 127.0.0.1:5000/team/app, without a tag)`);
  }
  if (!TAG.test(target.current) && !DIGEST.test(target.current)) {
    throw new InputError(where, `current tag "${target.current}" is not a tag (letters, digits, _ . -, at most 128)`);
  }
  if (target.currentDigest !== undefined && !DIGEST.test(target.currentDigest)) {
    throw new InputError(where, `current digest "${target.currentDigest}" is not a digest (expected sha256:<64 hex>)`);
  }
}
