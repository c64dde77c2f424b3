import type { Logger } from '../log/index.js';
import { FileStore } from './file-store.js';
import { compareNewestFirst } from './records.js';
import { RedisStore } from './redis-store.js';
import type { RunReader, RunRecord, Store } from './types.js';

export * from './types.js';
export {
  StoreError, RunNotFoundError, RunExistsError, RunAlreadyFinishedError, StoreCorruptError,
  StoreUnavailableError, StoreConfigError, StateDirBusyError,
} from './errors.js';
export { FileStore, defaultStateDir, type FileStoreOptions } from './file-store.js';
export { RedisStore, type RedisStoreOptions } from './redis-store.js';
export { followLog, type FollowLogOptions } from './follow.js';
export { DEFAULT_LIST_LIMIT, compareNewestFirst as compareRunsNewestFirst } from './records.js';

export interface StoreConfig {
  /** File store directory. @default defaultStateDir() */
  readonly stateDir?: string;
  /** Use Redis instead of files (the state dir is then unused). */
  readonly redisUrl?: string;
  /** Redis key prefix. @default 'keelson:' */
  readonly redisKeyPrefix?: string;
  readonly logger?: Logger;
  /** This process runs pipelines: the file store then owns its state dir until close() (a
   * second such process fails with StateDirBusyError). The Redis store needs no lock: each run
   * carries its owner. @default false (readers: runs, logs, the status page) */
  readonly exclusive?: boolean;
}

/**
 * Opens the store the config asks for: Redis when a URL is given, else the file store. The one
 * place that knows both. Transitions out of a terminal phase throw RunAlreadyFinishedError
 * (code KEELSON_RUN_FINISHED) on both and leave the record unchanged.
 */
export async function createStore(config: StoreConfig = {}): Promise<Store> {
  if (config.redisUrl !== undefined) {
    return RedisStore.connect({
      url: config.redisUrl,
      ...(config.redisKeyPrefix !== undefined ? { keyPrefix: config.redisKeyPrefix } : {}),
      ...(config.logger ? { logger: config.logger } : {}),
    });
  }
  return FileStore.open({
    ...(config.stateDir !== undefined ? { stateDir: config.stateDir } : {}),
    ...(config.logger ? { logger: config.logger } : {}),
    ...(config.exclusive ? { exclusive: true } : {}),
  });
}

// Enough for any real backlog; listRuns' default of 100 could hide unfinished runs.
const UNFINISHED_LIMIT = 100_000;

/**
 * Runs that are queued or running, newest first. After a kill -9 these are the runs nobody
 * finishes: the pipeline marks them interrupted (reason ProcessDied) on start.
 */
export async function findUnfinishedRuns(store: RunReader): Promise<RunRecord[]> {
  const [running, queued] = await Promise.all([
    store.listRuns({ phase: 'running', limit: UNFINISHED_LIMIT }),
    store.listRuns({ phase: 'queued', limit: UNFINISHED_LIMIT }),
  ]);
  return [...running, ...queued].sort(compareNewestFirst);
}
