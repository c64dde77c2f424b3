import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { RunId } from '../domain/index.js';
import { messageOf } from '../errors.js';
import { redactSecrets, registerSecret, silentLogger, type Logger } from '../log/index.js';
import {
  RunExistsError, RunNotFoundError, StoreConfigError, StoreCorruptError, StoreError, StoreUnavailableError,
} from './errors.js';
import {
  applyTransition, completeUtf8Length, listLimit, matchesFilter, newRunRecord, systemClock, withRunProcess, type Clock,
} from './records.js';
import { RunLogRedaction } from './log-redaction.js';
import { parseStoredRun } from './schema.js';
import { isTerminal } from './types.js';
import type {
  CorruptRun, NewRun, RunFilter, RunPhase, RunProcess, RunReason, RunRecord, RunUpdate, Store,
} from './types.js';

export interface RedisStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...` */
  readonly url: string;
  /** Prefix of every key, so that several keelsons can share a Redis. @default 'keelson:' */
  readonly keyPrefix?: string;
  /** Give up connecting after this long. @default 5000 */
  readonly connectTimeoutMs?: number;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** Time source for record timestamps. @default the system clock */
  readonly clock?: Clock;
  /** How long this process's owner key outlives its last heartbeat (a kill -9, a lost
   * connection): its runs are recovered by another process only after that. @default 10000 */
  readonly ownerTtlMs?: number;
}

const DEFAULTS = { keyPrefix: 'keelson:', connectTimeoutMs: 5000, ownerTtlMs: 10_000 } as const;

// How often a transition retries after another writer changed the record under it.
const MAX_CAS_ATTEMPTS = 50;
const LIST_PAGE = 200;

/*
 * Keys (after the prefix):
 *   run:<id>             the record, a JSON string
 *   runs                 sorted set of every run id, scored by creation time (ms)
 *   runs:watch:<watch>   the same, per watch
 *   runs:phase:<phase>   the same, per current phase (findUnfinishedRuns reads two small sets)
 *   log:<id>             the log, a string grown with APPEND: an offset is its byte length
 *   state:<key>          a JSON string
 *   owner:<owner>        exists while the process that created runs as <owner> is alive
 *                        (renewed every third of its TTL)
 */

/** SET NX the record and index it, or return 0 when the id is taken. */
const CREATE_RUN = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
return 1`;

/**
 * Compare-and-set: replace the record only if it is still what the caller read, and move it
 * between phase indexes in the same step. The transition rules stay in TypeScript (records.ts)
 * and are shared with the file store; atomicity comes from the script.
 */
const REPLACE_RUN = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1`;

/** APPEND only to the log of a run that exists; -1 otherwise. */
const APPEND_LOG = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('APPEND', KEYS[2], ARGV[1])`;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** The store for in-cluster use: several replicas share one Redis (ioredis). */
export class RedisStore implements Store {
  readonly description: string;
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly redaction = new RunLogRedaction();
  /** The connection's last error event: says why when connect() only says "Connection is closed". */
  private lastError: Error | undefined;
  private readonly logger: Logger;
  readonly ownerTtlMs: number;
  private heartbeat: NodeJS.Timeout | undefined;
  /** `<host>:<pid>:<random>`: unique per process, never reused. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;

  private constructor(options: RedisStoreOptions, location: RedisLocation, RedisClient: typeof Redis) {
    this.description = location.description;
    this.prefix = options.keyPrefix ?? DEFAULTS.keyPrefix;
    this.clock = options.clock ?? systemClock;
    const logger = options.logger ?? silentLogger();
    this.logger = logger;
    this.ownerTtlMs = options.ownerTtlMs ?? DEFAULTS.ownerTtlMs;
    if (!(this.ownerTtlMs >= 1000)) throw new RangeError(`ownerTtlMs must be at least 1000, got ${this.ownerTtlMs}`);
    this.client = new RedisClient(options.url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      maxRetriesPerRequest: 2,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    // ioredis reports each failed reconnect as an event; without a listener they would crash us.
    this.client.on('error', (error: Error) => {
      this.lastError = error;
      logger.warn({ store: this.description, error: redactSecrets(error.message) }, 'redis connection error');
    });
    this.client.defineCommand('keelsonCreateRun', { numberOfKeys: 4, lua: CREATE_RUN });
    this.client.defineCommand('keelsonReplaceRun', { numberOfKeys: 3, lua: REPLACE_RUN });
    this.client.defineCommand('keelsonAppendLog', { numberOfKeys: 2, lua: APPEND_LOG });
  }

  /** Connects and checks the server answers (and accepts the password) before returning. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const location = parseRedisUrl(options.url);
    if (options.keyPrefix === '') throw new StoreConfigError('redis key prefix', 'must not be empty');
    // ioredis is loaded by the processes that use Redis only (~6 MiB of RSS for the others).
    const { Redis: RedisClient } = await import('ioredis');
    const store = new RedisStore(options, location, RedisClient);
    try {
      await store.client.connect();
      await store.client.ping();
    } catch (error) {
      store.client.disconnect();
      const why = store.lastError ?? error;
      throw new StoreUnavailableError(store.description, `cannot reach redis: ${redactSecrets(messageOf(why))}`, { cause: why });
    }
    return store;
  }

  createRun(run: NewRun): Promise<RunRecord> {
    return this.guard(async () => {
      await this.startHeartbeat();
      const record = newRunRecord(run, this.clock(), this.owner);
      const created = await this.script('keelsonCreateRun')(
        this.key('run', run.id), this.key('runs'), this.key('runs:watch', run.watch), this.key('runs:phase', run.phase),
        JSON.stringify(record), Date.parse(record.createdAt), run.id,
      );
      if (created !== 1) throw new RunExistsError(run.id, this.description);
      if (!isTerminal(run.phase)) this.redaction.begin(run.id);
      return record;
    });
  }

  async transitionRun(id: RunId, phase: RunPhase, reason: RunReason, message: string, update?: RunUpdate): Promise<RunRecord> {
    // The end of the log held back as a possible beginning of a secret is written before the run ends.
    if (isTerminal(phase)) {
      const rest = this.redaction.end(id);
      await this.guard(() => this.writeLog(id, rest));
    }
    return this.updateRun(id, (current) => applyTransition(current, phase, reason, message, update, this.clock()));
  }

  async recordRunProcess(id: RunId, process: RunProcess): Promise<void> {
    await this.updateRun(id, (current) => withRunProcess(current, process));
  }

  /** An owner is alive while its key exists: its process renews it until close(). */
  ownerAlive(owner: string): Promise<boolean> {
    return this.guard(async () => (await this.client.exists(this.key('owner', owner))) === 1);
  }

  /** Compare-and-set of one record, moving it between phase indexes when its phase changes. */
  private updateRun(id: RunId, change: (current: RunRecord) => RunRecord): Promise<RunRecord> {
    return this.guard(async () => {
      const key = this.key('run', id);
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const text = await this.client.get(key);
        if (text === null) throw new RunNotFoundError(id, this.description);
        const current = this.parse(key, text);
        const next = change(current);
        const replaced = await this.script('keelsonReplaceRun')(
          key, this.key('runs:phase', current.phase), this.key('runs:phase', next.phase),
          text, JSON.stringify(next), Date.parse(current.createdAt), id,
        );
        if (replaced === 1) return next;
      }
      throw new StoreUnavailableError(this.description, `run "${id}" kept changing under ${MAX_CAS_ATTEMPTS} transition attempts`);
    });
  }

  /** Sets this process's owner key before its first run, and keeps renewing it. */
  private async startHeartbeat(): Promise<void> {
    if (this.heartbeat) return;
    const beat = () => this.client.set(this.key('owner', this.owner), new Date().toISOString(), 'PX', this.ownerTtlMs);
    await beat();
    this.heartbeat = setInterval(() => {
      beat().catch((error: unknown) => this.logger.warn({ store: this.description, error: redactSecrets(messageOf(error)) }, 'cannot renew run ownership'));
    }, Math.floor(this.ownerTtlMs / 3));
    this.heartbeat.unref();
  }

  getRun(id: RunId): Promise<RunRecord | undefined> {
    return this.guard(async () => {
      const key = this.key('run', id);
      const text = await this.client.get(key);
      return text === null ? undefined : this.parse(key, text);
    });
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const limit = listLimit(filter);
    return this.guard(async () => {
      // Walk the smallest index that fits the filter, newest first, and check the rest per record.
      const index = filter.phase !== undefined ? this.key('runs:phase', filter.phase)
        : filter.watch !== undefined ? this.key('runs:watch', filter.watch)
          : this.key('runs');
      const out: RunRecord[] = [];
      for (let start = 0; out.length < limit; start += LIST_PAGE) {
        const ids = await this.client.zrevrange(index, start, start + LIST_PAGE - 1);
        if (ids.length === 0) break;
        const texts = await this.client.mget(ids.map((id) => this.key('run', id)));
        texts.forEach((text, i) => {
          if (text === null || out.length >= limit) return;
          const key = this.key('run', ids[i]!);
          const parsed = parseStoredRun(text);
          // One damaged record must not hide every other run; corruptRuns() names it.
          if ('problem' in parsed) {
            this.logger.warn({ store: this.description, key, problem: parsed.problem }, 'skipping unreadable run record');
            return;
          }
          if (matchesFilter(parsed.record, filter)) out.push(parsed.record);
        });
        if (ids.length < LIST_PAGE) break;
      }
      return out;
    });
  }

  /** Records listRuns leaves out because they do not parse. */
  corruptRuns(): Promise<CorruptRun[]> {
    return this.guard(async () => {
      const corrupt: CorruptRun[] = [];
      for (let start = 0; ; start += LIST_PAGE) {
        const ids = await this.client.zrange(this.key('runs'), start, start + LIST_PAGE - 1);
        if (ids.length === 0) break;
        const texts = await this.client.mget(ids.map((id) => this.key('run', id)));
        texts.forEach((text, i) => {
          if (text === null) return;
          const parsed = parseStoredRun(text);
          if ('problem' in parsed) corrupt.push({ id: ids[i]!, where: `${this.description} key ${this.key('run', ids[i]!)}`, problem: `bad run record: ${parsed.problem}` });
        });
        if (ids.length < LIST_PAGE) break;
      }
      return corrupt;
    });
  }

  appendLog(id: RunId, text: string): Promise<void> {
    // Redacted (and any held-back beginning of a secret kept) in call order, before the first await.
    const redacted = this.redaction.redact(id, text);
    return this.guard(() => this.writeLog(id, redacted));
  }

  private async writeLog(id: RunId, text: string): Promise<void> {
    if (text === '') return;
    const length = await this.script('keelsonAppendLog')(this.key('run', id), this.key('log', id), text);
    if (length === -1) throw new RunNotFoundError(id, this.description);
  }

  readLog(id: RunId, fromOffset = 0): Promise<{ text: string; offset: number }> {
    if (!Number.isInteger(fromOffset) || fromOffset < 0) throw new RangeError(`log offset must be a whole number >= 0, got ${fromOffset}`);
    return this.guard(async () => {
      const results = await this.client.multi()
        .exists(this.key('run', id))
        .getrangeBuffer(this.key('log', id), fromOffset, -1)
        .exec();
      const [exists, range] = (results ?? []).map(([error, value]) => {
        if (error) throw error;
        return value;
      });
      if (exists !== 1) throw new RunNotFoundError(id, this.description);
      const bytes = range as Buffer;
      // APPENDs are atomic, so a cut character can only come from an offset not returned by us.
      const complete = completeUtf8Length(bytes);
      return { text: bytes.toString('utf8', 0, complete), offset: fromOffset + complete };
    });
  }

  getState<T>(key: string): Promise<T | undefined> {
    return this.guard(async () => {
      const redisKey = this.stateKey(key);
      const text = await this.client.get(redisKey);
      if (text === null) return undefined;
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new StoreCorruptError(`${this.description} key ${redisKey}`, 'state value is not JSON', { cause: error });
      }
    });
  }

  /** Stores a JSON-serialisable value; `undefined` deletes the key. */
  setState<T>(key: string, value: T): Promise<void> {
    if (value === undefined) return this.deleteState(key);
    return this.guard(async () => {
      await this.client.set(this.stateKey(key), JSON.stringify(value));
    });
  }

  deleteState(key: string): Promise<void> {
    return this.guard(async () => {
      await this.client.del(this.stateKey(key));
    });
  }

  async close(): Promise<void> {
    if (this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      // Our runs are finished or interrupted by now: another process may take them over at once.
      await this.client.del(this.key('owner', this.owner)).catch(() => undefined);
    }
    if (this.client.status === 'end') return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private key(kind: string, name?: string): string {
    return name === undefined ? `${this.prefix}${kind}` : `${this.prefix}${kind}:${name}`;
  }

  private stateKey(key: string): string {
    if (typeof key !== 'string' || key === '') throw new RangeError('state key must be a non-empty string');
    return this.key('state', key);
  }

  private parse(key: string, text: string): RunRecord {
    const parsed = parseStoredRun(text);
    if ('problem' in parsed) throw new StoreCorruptError(`${this.description} key ${key}`, `bad run record: ${parsed.problem}`);
    return parsed.record;
  }

  private script(name: string): ScriptCall {
    const fn = (this.client as unknown as Record<string, ScriptCall>)[name]!;
    return fn.bind(this.client);
  }

  /** Our own errors pass through; a Redis or network failure becomes StoreUnavailableError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof StoreError || error instanceof RangeError) throw error;
      throw new StoreUnavailableError(this.description, `redis command failed: ${redactSecrets(messageOf(error))}`, { cause: error });
    }
  }
}

interface RedisLocation {
  /** `redis://host:port/db`, never with the user or password */
  readonly description: string;
}

/** Checks a Redis URL and registers its password as a secret the moment it is read. */
export function parseRedisUrl(url: string): RedisLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new StoreConfigError('redis URL', 'not a URL (expected redis://[:password@]host[:port][/db])', { cause: error });
  }
  const where = `redis URL ${parsed.protocol}//${parsed.host}`;
  if (parsed.password) {
    registerSecret(parsed.password);
    registerSecret(decodeUserInfo(parsed.password, where, 'password'));
  }
  // ioredis decodes the user name the same way and would fail as late and as obscurely.
  decodeUserInfo(parsed.username, where, 'user name');
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new StoreConfigError(where, `scheme must be redis: or rediss:, not ${parsed.protocol}`);
  }
  if (!parsed.hostname) throw new StoreConfigError(where, 'no host');
  const db = parsed.pathname.replace(/^\//, '') || '0';
  if (!/^\d+$/.test(db)) throw new StoreConfigError(where, `database "${db}" is not a number`);
  const port = parsed.port || '6379';
  return { description: `${parsed.protocol}//${parsed.hostname}:${port}/${db}` };
}

/** The %-decoded user name or password; a bad escape is named without echoing the value. */
function decodeUserInfo(text: string, where: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new StoreConfigError(where, `the ${what} has a bad %-escape (write a literal % as %25)`, { cause: error });
  }
}
