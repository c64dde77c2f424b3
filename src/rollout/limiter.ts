/**
 * At most `concurrency` pieces of work at a time; the rest wait in line, first come first served.
 * The rollouts of one image change (a thousand workloads may run it) go through one of these, so
 * the API server sees a steady handful of patches rather than a thousand at once.
 */
export class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Limiter: concurrency must be a whole number >= 1, got ${concurrency}`);
  }

  /** Work started and not yet settled. */
  get active(): number {
    return this.running;
  }

  /** Work waiting for a free place. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Resolves when no work runs or waits (at once when none does). */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs `work` when a place is free; settles as it does. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    // A place freed while others wait is handed over directly, so newcomers cannot jump the line.
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else if (--this.running === 0) {
        const idle = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of idle) resolve();
      }
    }
  }
}
