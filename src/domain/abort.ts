/**
 * The reason given when a run is aborted because a newer commit of the same watch arrived, so
 * that the pipeline can tell "cancelled on purpose" from "keelson is shutting down".
 */
export class SupersededError extends Error {
  override readonly name = 'SupersededError';
  constructor(readonly byCommit: string) {
    super(`superseded by commit ${byCommit.slice(0, 12)}`);
  }
}

export function isSuperseded(reason: unknown): reason is SupersededError {
  return reason instanceof SupersededError;
}

/** A counting semaphore: at most `limit` holders at once, waiting in FIFO order. */
export class Slots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slots: ${limit} is not a positive whole number`);
  }

  get inUse(): number {
    return this.active;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const grant = (): (() => void) => {
      this.active += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.active -= 1;
        this.waiting.shift()?.();
      };
    };
    if (this.active < this.limit) return Promise.resolve(grant());
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(grant());
      };
      const onAbort = (): void => {
        const index = this.waiting.indexOf(wake);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal!.reason);
      };
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(wake);
    });
  }
}
