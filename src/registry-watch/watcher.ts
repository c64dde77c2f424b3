import { setMaxListeners } from 'node:events';
import { Duration } from '../domain/index.js';
import { InputError, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log/index.js';
import { recordRegistryCheck } from '../metrics/index.js';
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
  /**
   * A job's place in its interval, in ms from 0 to `spread` (exclusive): jobs are spread over
   * the interval rather than fired together, each at the same place every cycle. @default a
   * hash of the job key
   */
  readonly jitter?: (jobKey: string, spread: number) => number;
  /**
   * Told when checks start so late that they miss their cycle (the registries' allowed rate
   * cannot keep up with the number of jobs): `late` checks since the last call. @default none
   */
  readonly onOverrun?: (late: number) => void;
}

const DEFAULTS = {
  defaultSchedule: '@every 1m',
  backoff: Duration.ofSeconds(10),
  maxBackoff: Duration.ofSeconds(600),
  concurrency: 8,
  checkTimeout: Duration.ofSeconds(120),
} as const;

const KNOWN_OPTIONS = new Set(['reader', 'store', 'logger', 'defaultSchedule', 'backoff', 'maxBackoff', 'concurrency', 'checkTimeout', 'now', 'jitter', 'onOverrun']);

/** An overrun is logged at most this often; the counter sees every late check. */
const OVERRUN_LOG_INTERVAL_MS = 60_000;

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
  /** While idle: when the next check is due. While queued: the time it was due. */
  nextDue: number;
  failures: number;
  lastError?: string;
  lastCheckedAt?: number;
  /** Loaded from the store on the first check */
  baselines?: Map<string, TargetBaseline>;
  /** idle: waits for nextDue; queued: waits for a free slot; running: its request is in flight */
  state: 'idle' | 'queued' | 'running';
  /** Settles when the queued or running check ends */
  pending?: Deferred<RegistryChange[]>;
  /** A check asked for while one was running (a webhook): queued again right after it */
  again?: Deferred<RegistryChange[]>;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/**
 * Watches registries for the targets it is given: ONE poll job per distinct repository (tag
 * mode: list tags, each target's policy picks) or repository:tag (digest mode: HEAD the
 * manifest), at the most frequent schedule any of its targets asks for. A new digest or a
 * newer tag is an event to subscribers. Baselines live in the StateStore, so a change made
 * while keelson was down fires once after a restart and a restart alone fires nothing.
 *
 * Every job is in exactly one state (idle, queued, running), so however many targets arrive, in
 * whatever order, a job is checked at most once per due time: one request per distinct image per
 * cycle, from the first cycle on. Jobs keep a stable place in their interval (jitter per job key,
 * on a whole second), so a thousand images polled every 30 s make 30 small bursts of about 33
 * requests rather than one burst at start and at every interval; checks that start too late to
 * keep their cycle are logged and counted.
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
  private readonly jitter: (jobKey: string, spread: number) => number;
  private readonly onOverrun?: (late: number) => void;

  private readonly jobs = new Map<string, Job>();
  /** Jobs waiting for one of the `concurrency` slots; checks asked for out of schedule go first */
  private readonly queue: Job[] = [];
  private active = 0;
  /** When dropped jobs were last checked, so one that comes back keeps its gap */
  private readonly dropped = new Map<string, number>();
  private timerAt = Infinity;
  private lateSinceLog = 0;
  private lastOverrunLog = -Infinity;
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
    this.jitter = options.jitter ?? stableJitter;
    this.onOverrun = options.onOverrun;
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
      const schedule = target.schedule ?? this.defaultSchedule;
      const lastCheckedAt = this.dropped.get(key);
      this.dropped.delete(key);
      job = {
        key,
        mode: mode === 'tags' ? 'tags' : 'digest',
        repository: target.repository,
        tag: mode === 'digest' ? target.current : undefined,
        stateKey: mode === 'tags' ? `registry:tags:${target.repository}` : `registry:digest:${key}`,
        targets: new Map(),
        schedule,
        nextDue: 0,
        failures: 0,
        state: 'idle',
        ...(lastCheckedAt === undefined ? {} : { lastCheckedAt }),
      };
      // The first check at the job's own place in the interval, not at once: a thousand images
      // discovered together are a thousand requests spread over the interval.
      job.nextDue = this.slot(job, schedule, lastCheckedAt === undefined ? now : Math.max(now, this.earliestAfter(schedule, lastCheckedAt)));
      this.jobs.set(key, job);
      this.logger.debug({ job: key, mode: job.mode }, 'poll job added');
    }
    const previous = job.targets.get(target.id);
    if (previous && (previous.current !== target.current || previous.currentDigest !== target.currentDigest)) {
      job.baselines?.delete(target.id); // rolled out or edited: its own current state is the baseline now
    }
    job.targets.set(target.id, target);
    this.reschedule(job, now);
    if (job.state === 'idle') this.armFor(job.nextDue);
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
      if (job.lastCheckedAt !== undefined) this.dropped.set(job.key, job.lastCheckedAt);
      this.logger.debug({ job: job.key }, 'poll job removed');
    } else {
      this.reschedule(job, this.now());
    }
  }

  /**
   * Checks now, out of schedule and regardless of backoff (a webhook said an image was
   * pushed): every job of `repository` (`host/path`), or every job. A job that is running is
   * checked again right after. Resolves to the changes found (also sent to subscribers).
   */
  async checkNow(repository?: string): Promise<RegistryChange[]> {
    const jobs = [...this.jobs.values()].filter((job) => repository === undefined || job.repository === repository);
    const results = await Promise.all(jobs.map((job) => this.enqueue(job, true)));
    return results.flat();
  }

  /** Checks every job that is due now, once, and resolves when all are done. No timers. */
  async pollOnce(): Promise<PollResult> {
    const now = this.now();
    const due = [...this.jobs.values()].filter((job) => job.state === 'idle' && job.nextDue <= now);
    const failuresBefore = due.map((job) => job.failures);
    const results = await Promise.all(due.map((job) => this.enqueue(job, false)));
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
    this.timerAt = Infinity;
    this.lifecycle.abort();
    // Queued checks end at once without a request (the aborted signal), running ones when aborted.
    await Promise.allSettled([...this.jobs.values()].flatMap((job) => [job.pending?.promise, job.again?.promise].filter(Boolean)));
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
    if (job.failures === 0 && job.state === 'idle') {
      const from = job.lastCheckedAt === undefined ? now : Math.max(now, this.earliestAfter(fastest, job.lastCheckedAt));
      job.nextDue = Math.min(job.nextDue, this.slot(job, fastest, from));
    }
  }

  /** The job's first slot at or after `from`: its schedule shifted by its stable jitter. */
  private slot(job: Pick<Job, 'key'>, schedule: Schedule, from: number): number {
    const spread = Math.max(1, schedule.spread(from));
    const offset = Math.min(spread - 1, Math.max(0, Math.floor(this.jitter(job.key, spread))));
    return schedule.at(from, offset);
  }

  /**
   * The earliest time a job checked at `checkedAt` may be checked again by schedule: half an
   * interval later. A check that ran a little late keeps its next slot; one that ran more than
   * half an interval late skips a slot instead of hitting the registry twice in a row.
   */
  private earliestAfter(schedule: Schedule, checkedAt: number): number {
    return checkedAt + Math.floor(schedule.period(checkedAt) / 2);
  }

  /**
   * Puts a job in line, or joins the check it is already in line for. `urgent` (a webhook,
   * checkNow) goes to the front, and a job whose check is already in flight is checked again
   * right after it, since the registry may have changed since that request was sent.
   */
  private enqueue(job: Job, urgent: boolean): Promise<RegistryChange[]> {
    if (job.state === 'running') {
      if (!urgent) return job.pending!.promise;
      job.again ??= deferred();
      return job.again.promise;
    }
    if (job.state === 'queued') {
      if (urgent) {
        const at = this.queue.indexOf(job);
        if (at > 0) {
          this.queue.splice(at, 1);
          this.queue.unshift(job);
        }
      }
      return job.pending!.promise;
    }
    job.state = 'queued';
    job.pending = deferred();
    if (urgent) this.queue.unshift(job);
    else this.queue.push(job);
    this.pump();
    return job.pending.promise;
  }

  /** Starts queued checks while fewer than `concurrency` run. */
  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      const pending = job.pending!;
      if (this.jobs.get(job.key) !== job) { // its last target went while it waited
        job.state = 'idle';
        job.pending = undefined;
        pending.resolve([]);
        continue;
      }
      this.noteLateness(job);
      job.state = 'running';
      this.active += 1;
      void this.check(job).then((changes) => {
        this.active -= 1;
        job.state = 'idle';
        job.pending = undefined;
        pending.resolve(changes);
        const again = job.again;
        if (again) {
          job.again = undefined;
          void this.enqueue(job, true).then(again.resolve);
        }
        this.pump();
        this.armFor(job.nextDue);
      });
    }
  }

  /** A scheduled check starting more than half an interval after its slot misses its cycle. */
  private noteLateness(job: Job): void {
    const now = this.now();
    if (job.lastCheckedAt === undefined && job.failures === 0 && job.nextDue > now) return;
    const late = now - job.nextDue;
    if (late <= job.schedule.period(job.nextDue) / 2) return;
    this.lateSinceLog += 1;
    this.onOverrun?.(1);
    if (now - this.lastOverrunLog < OVERRUN_LOG_INTERVAL_MS) return;
    this.logger.warn({ late: this.lateSinceLog, queued: this.queue.length, jobs: this.jobs.size, lateBySeconds: Math.round(late / 1000), schedule: job.schedule.text },
      'registry poll cycle overrun: checks start later than their interval allows (raise the registry rate limit or poll less often)');
    this.lateSinceLog = 0;
    this.lastOverrunLog = now;
  }

  /** One check of one job; never rejects. */
  private async check(job: Job): Promise<RegistryChange[]> {
    const lifecycle = this.lifecycle.signal;
    if (lifecycle.aborted) return []; // stopping: what was still in line is not sent
    // One controller per check, its timer and listener removed when the check ends (the
    // AbortSignal.timeout/any pair keeps both alive long after, thousands per hour).
    const check = new AbortController();
    const stop = () => check.abort(lifecycle.reason);
    lifecycle.addEventListener('abort', stop, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      check.abort(new Error(`no answer within ${this.checkTimeoutMs / 1000}s`));
    }, this.checkTimeoutMs);
    const signal = check.signal;
    let observed: { tags: string[] } | { digest: string };
    try {
      if (!job.baselines) job.baselines = await this.loadBaselines(job);
      observed = job.mode === 'tags'
        ? { tags: await this.reader.listTags(job.repository, { signal }) }
        : { digest: await this.reader.manifestDigest(job.repository, job.tag!, { signal }) };
    } catch (error) {
      if (lifecycle.aborted) return []; // stopping: not the registry's fault
      recordRegistryCheck(error, timedOut);
      this.failed(job, error);
      return [];
    } finally {
      clearTimeout(timer);
      lifecycle.removeEventListener('abort', stop);
    }
    recordRegistryCheck();
    const now = this.now();
    job.failures = 0;
    job.lastError = undefined;
    job.lastCheckedAt = now;
    job.nextDue = this.slot(job, job.schedule, this.earliestAfter(job.schedule, now));

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
    // The workloads of one image mostly share policy and current tag: each distinct question is
    // answered once per check, not once per workload (a policy parses every tag it is shown).
    const chosen = new Map<string, string | undefined>();
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
        const question = `${target.policy.text}\u0000${baseline}\u0000${target.matchTag === true}\u0000${target.matchPreRelease !== false}`;
        let pick: string | undefined;
        if (chosen.has(question)) pick = chosen.get(question);
        else {
          pick = target.policy.choose(baseline, observed.tags, { matchTag: target.matchTag, matchPreRelease: target.matchPreRelease });
          chosen.set(question, pick);
        }
        if (pick !== undefined && pick !== baseline) {
          const oldDigest = baseline === target.current ? currentDigest : undefined;
          change = { repository: job.repository, oldTag: baseline, newTag: pick, ...(oldDigest === undefined ? {} : { oldDigest }) };
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
    job.nextDue = this.slot(job, job.schedule, Math.max(this.earliestAfter(job.schedule, now), now + delay));
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

  /** One timer for the whole watcher, set for the earliest idle job; due jobs go in line. */
  private arm(): void {
    if (!this.started) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    let earliest = Infinity;
    for (const job of this.jobs.values()) {
      if (job.state !== 'idle') continue;
      if (job.nextDue <= now) void this.enqueue(job, false);
      else if (job.nextDue < earliest) earliest = job.nextDue;
    }
    for (const [key, checkedAt] of this.dropped) {
      if (now - checkedAt > DROPPED_MEMORY_MS) this.dropped.delete(key);
    }
    this.armFor(earliest);
  }

  /** Moves the timer earlier when `at` comes before it (a new job, a job that was just checked). */
  private armFor(at: number): void {
    if (!this.started || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.arm();
    }, delay);
  }
}

/** How long the last check of a dropped job is remembered (longer than any interval worth spreading). */
const DROPPED_MEMORY_MS = 24 * 3600_000;

/**
 * A jitter that puts a job's slot where the clock is when the slot is computed: the first check at
 * once, then one interval after each check. For a watcher of a handful of jobs (one image's
 * tags), where spreading buys nothing and a user waits for the first check. (A fixed anchor taken
 * before the job is added would put its first slot a whole interval later.)
 */
export function immediateJitter(now: () => number = Date.now): (jobKey: string, spread: number) => number {
  return (_jobKey, spread) => ((now() % spread) + spread) % spread;
}

/**
 * Stable places fall on whole seconds, so the checks due in the same second go out together: one
 * wake-up of the daemon and one burst of answers per second instead of one of each per check. An
 * idle process woken costs about as much CPU as a whole request to a registry on loopback, so a
 * thousand checks spread to the millisecond cost twice as much as the same checks in 30 steps.
 */
export const SLOT_STEP_MS = 1000;

/**
 * FNV-1a of the job key: the same place in the interval on every start and in every replica,
 * rounded down to a whole step when the interval holds at least two.
 */
export function stableJitter(jobKey: string, spread: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < jobKey.length; i++) {
    hash ^= jobKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  const offset = (hash >>> 0) % spread;
  return spread >= 2 * SLOT_STEP_MS ? offset - (offset % SLOT_STEP_MS) : offset;
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
