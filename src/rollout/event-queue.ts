import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { Limiter } from './limiter.js';

/** Sends one Kubernetes Event; resolves to false (or rejects) when the API server did not take it. */
export type EventSend = () => Promise<boolean>;

export interface EventQueueOptions {
  /** Events sent at the same time. @default 4 */
  readonly concurrency?: number;
  /** Events waiting or in flight at most; more are dropped, counted and logged. @default 2000 */
  readonly capacity?: number;
  /** Told each dropped or failed event (a metric). Must not throw. */
  readonly onLost?: (reason: 'queue_full' | 'failed') => void;
  /** A dropped or failed event is logged at most this often (with how many since). @default 30s */
  readonly logIntervalMs?: number;
  /**
   * Resolves when more urgent work on the API server is done (the patches of a burst of
   * rollouts): an Event waits for it, at most `maxYieldMs`. @default none
   */
  readonly quiet?: () => Promise<void>;
  /** The longest an Event waits for `quiet`. @default 2000 */
  readonly maxYieldMs?: number;
}

const DEFAULTS = { concurrency: 4, capacity: 2000, logIntervalMs: 30_000, maxYieldMs: 2000 };

/**
 * Sends the Events that follow a rollout off its critical path: the patch is done and recorded
 * when its Event is queued, the next rollout does not wait for it, and (given `quiet`) the
 * Events of a burst wait for its patches rather than compete with them at the API server. Bounded: a queue full of
 * Events (the API server slow or down while a thousand workloads roll) drops the newest, and every
 * Event not sent — dropped or refused — is counted and logged, never lost silently.
 */
export class EventQueue {
  private readonly limiter: Limiter;
  private readonly capacity: number;
  private readonly logIntervalMs: number;
  private readonly inFlight = new Set<Promise<void>>();
  private lost = { queue_full: 0, failed: 0 };
  private lastLog = -Infinity;

  constructor(private readonly logger: Logger, private readonly options: EventQueueOptions = {}) {
    this.limiter = new Limiter(options.concurrency ?? DEFAULTS.concurrency);
    this.capacity = options.capacity ?? DEFAULTS.capacity;
    this.logIntervalMs = options.logIntervalMs ?? DEFAULTS.logIntervalMs;
  }

  /** Events waiting or in flight. */
  get size(): number {
    return this.inFlight.size;
  }

  /** Queues an Event; returns at once. `what` names it in the log when it is not sent. */
  add(what: { workload: string; reason: string }, send: EventSend): void {
    if (this.inFlight.size >= this.capacity) {
      this.note('queue_full', what);
      return;
    }
    const sent = this.limiter.run(async () => {
      await this.yieldToPatches();
      return send();
    }).then(
      (ok) => { if (!ok) this.note('failed', what); },
      (error: unknown) => this.note('failed', what, error),
    );
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent));
  }

  /** Waits for the Events queued so far (stopping: they are sent, not dropped). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Events are a courtesy: the patches of a burst go to the API server first. */
  private async yieldToPatches(): Promise<void> {
    const quiet = this.options.quiet;
    if (!quiet) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([quiet(), new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.maxYieldMs ?? DEFAULTS.maxYieldMs); })]);
    clearTimeout(timer);
  }

  private note(reason: 'queue_full' | 'failed', what: { workload: string; reason: string }, error?: unknown): void {
    this.lost[reason] += 1;
    try {
      this.options.onLost?.(reason);
    } catch { /* a metric must not break the queue */ }
    const now = Date.now();
    if (now - this.lastLog < this.logIntervalMs) return;
    this.logger.warn({
      workload: what.workload, eventReason: what.reason, ...(error === undefined ? {} : { err: messageOf(error) }),
      droppedQueueFull: this.lost.queue_full, failed: this.lost.failed, capacity: this.capacity,
    }, 'kubernetes events not recorded (the rollouts themselves are done and in the store)');
    this.lost = { queue_full: 0, failed: 0 };
    this.lastLog = now;
  }
}
