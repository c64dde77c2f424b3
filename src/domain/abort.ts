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

/**
 * Settles with `work`, or rejects with `signal.reason` as soon as `signal` aborts, whichever comes
 * first. For operations that ignore their signal in some phase (undici does not cut a TLS
 * handshake in progress when the request's signal aborts); `onLate` receives a result that
 * arrives after the abort, so it can be released.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, onLate?: (value: T) => void): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.then((value) => onLate?.(value), () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then((value) => {
      signal.removeEventListener('abort', onAbort);
      if (aborted) onLate?.(value);
      else resolve(value);
    }, (error: unknown) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}
