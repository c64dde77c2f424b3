import type { RunId } from '../domain/index.js';
import { RunNotFoundError } from './errors.js';
import { isTerminal, type RunLogStore, type RunReader, type Store } from './types.js';

export interface FollowLogOptions {
  /** Stops following; the iteration then ends quietly. */
  readonly signal?: AbortSignal;
  /** How often to look for new text. @default 500 ms */
  readonly pollInterval?: number;
  /** Byte offset to start at (from an earlier readLog). @default 0 */
  readonly fromOffset?: number;
}

const DEFAULT_POLL_MS = 500;

/**
 * Yields a run's log as it grows, until the run is in a terminal phase and everything written
 * before that has been yielded. The phase is read before the log on each round, so text
 * appended up to the final transition is never cut off. Polls, so it works the same on both
 * stores and across processes.
 */
export async function* followLog(
  store: Pick<Store, keyof RunReader | keyof RunLogStore | 'description'>,
  id: RunId,
  options: FollowLogOptions = {},
): AsyncIterable<string> {
  const pollInterval = options.pollInterval ?? DEFAULT_POLL_MS;
  if (!(pollInterval > 0)) throw new RangeError(`pollInterval must be positive, got ${pollInterval}`);
  let offset = options.fromOffset ?? 0;
  const { signal } = options;
  while (!signal?.aborted) {
    const run = await store.getRun(id);
    if (!run) throw new RunNotFoundError(id, store.description);
    const finished = isTerminal(run.phase);
    const chunk = await store.readLog(id, offset);
    offset = chunk.offset;
    if (chunk.text !== '') yield chunk.text;
    if (finished) {
      // A last append right after the transition: drain until a read comes back empty.
      if (chunk.text === '') return;
      continue;
    }
    if (chunk.text === '') await sleep(pollInterval, signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
