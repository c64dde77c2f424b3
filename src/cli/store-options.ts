import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { createStore, defaultStateDir, type Store } from '../store/index.js';

/** The flags addStoreOptions adds, as commander hands them to an action. */
export interface StoreFlags {
  readonly stateDir?: string;
  readonly redis?: string;
}

/** Adds `--state-dir D` and `--redis URL` to a command (watch, run, daemon, runs, logs...). */
export function addStoreOptions(command: Command): Command {
  return command
    .option('--state-dir <dir>', `file store directory (default: ${defaultStateDir()})`)
    .option('--redis <url>', 'use the Redis store at redis://[:password@]host[:port][/db] instead of files');
}

/**
 * Opens the store the flags ask for. Both flags at once is a usage error (exit 2). `exclusive`
 * for commands that run pipelines: a second one on the same state dir fails at once (exit 2).
 */
export async function openStoreFromOptions(flags: StoreFlags, options: { exclusive?: boolean } = {}): Promise<Store> {
  if (flags.stateDir !== undefined && flags.redis !== undefined) {
    throw new UsageError('--state-dir and --redis cannot be used together: the Redis store keeps no files');
  }
  if (flags.stateDir === '') throw new UsageError('--state-dir must not be empty');
  return createStore({
    ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
    ...(flags.redis !== undefined ? { redisUrl: flags.redis } : {}),
    ...(options.exclusive ? { exclusive: true } : {}),
  });
}

/** Opens the store, runs `work` with it and closes it, also when `work` throws. */
export async function withStoreFromOptions<T>(flags: StoreFlags, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStoreFromOptions(flags);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/**
 * For commands that only read (runs, logs, approvals): nothing is created. A `--state-dir` that
 * does not exist is a typo (exit 2); the default state dir not existing yet means nothing was
 * recorded, so `work` is not called and `empty` is the answer.
 */
export async function readStoreFromOptions<T>(flags: StoreFlags, work: (store: Store) => Promise<T>, empty: () => T): Promise<T> {
  if (flags.redis === undefined) {
    const dir = flags.stateDir ?? defaultStateDir();
    const info = await stat(dir).catch(() => undefined);
    if (!info) {
      if (flags.stateDir !== undefined) throw new UsageError(`--state-dir ${flags.stateDir}: no such directory (nothing was recorded there)`);
      return empty();
    }
  }
  return withStoreFromOptions(flags, work);
}
