import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket: at most `ratePerSecond` requests a second on average, bursts of up to
 * `burst`. One per registry host, so polling many images never floods one registry.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private ratePerSecond: number, private burst: number = Math.max(1, ratePerSecond),
    private readonly now: () => number = Date.now) {
    this.tokens = burst;
    this.last = now();
  }

  /** The average rate now. */
  get rate(): number {
    return this.ratePerSecond;
  }

  /** Changes the rate (and the burst with it) from now on; tokens already earned above the new burst are dropped. */
  setRate(ratePerSecond: number): void {
    this.refill();
    this.ratePerSecond = ratePerSecond;
    this.burst = Math.max(1, ratePerSecond);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  /** Ms until a token is free (0: now), without taking it. */
  waitTime(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }

  /** Takes a token, waiting for one when the bucket is empty; rejects when `signal` aborts. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = this.waitTime();
      if (wait === 0) {
        this.tokens -= 1;
        return;
      }
      await delay(wait, signal);
    }
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
  }
}

/** Waits `ms`; rejects with the signal's own reason (not a generic AbortError) when it aborts. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}
