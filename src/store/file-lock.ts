import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm } from 'node:fs/promises';
import { createFileExclusive, processAlive } from './atomic-file.js';

export interface FileLockOptions {
  /** Give up after this long. @default 10 s */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Runs `fn` while holding an exclusive lock file (O_EXCL create), so that two processes on one
 * state dir do not both read-modify-write the same record. The file holds `pid:token`; a lock
 * whose pid is gone (the holder was killed) is broken. Returns what `fn` returns; resolves to
 * `undefined` after `timeoutMs` without running `fn` — the caller turns that into an error.
 */
export async function withFileLock<T>(
  path: string, fn: () => Promise<T>, options: FileLockOptions = {},
): Promise<{ ran: true; value: T } | { ran: false; holder: string }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const content = `${process.pid}:${randomBytes(6).toString('hex')}`;
  const deadline = Date.now() + timeoutMs;
  let holder = '';
  for (let attempt = 0; ; attempt++) {
    // link(2) of a complete temp file: the lock never exists without its holder's pid in it.
    if (await createFileExclusive(path, content, { durable: false })) break;
    holder = await readFile(path, 'utf8').catch(() => '');
    if (holder !== '' && !processAlive(Number(holder.split(':')[0]))) {
      await breakStaleLock(path, holder);
      continue;
    }
    if (Date.now() > deadline) return { ran: false, holder };
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, 2 + attempt * 2) + Math.random() * 5));
  }
  try {
    return { ran: true, value: await fn() };
  } finally {
    // Only remove our own lock; if it was broken as stale meanwhile, leave the new holder's.
    if ((await readFile(path, 'utf8').catch(() => '')) === content) await rm(path, { force: true });
  }
}

/**
 * Moves a dead holder's lock aside. Two processes may find the same stale lock; the rename
 * makes only one of them win, and a lock that was retaken meanwhile is linked back.
 */
export async function breakStaleLock(path: string, staleContent: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else moved it already
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== staleContent) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}
