import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { RunId } from '../domain/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { isRunning, processIdentity } from '../proc/index.js';
import { createFileExclusive, isTempName, removeStaleTemps, writeFileAtomic } from './atomic-file.js';
import {
  RunExistsError, RunNotFoundError, StateDirBusyError, StoreConfigError, StoreCorruptError, StoreUnavailableError,
} from './errors.js';
import { withFileLock } from './file-lock.js';
import { KeyedQueue } from './keyed-queue.js';
import { RunLogRedaction } from './log-redaction.js';
import { StateDirLock } from './state-dir-lock.js';
import {
  applyTransition, compareNewestFirst, completeUtf8Length, listLimit, matchesFilter, newRunRecord,
  systemClock, withRunProcess, type Clock,
} from './records.js';
import { parseStoredRun } from './schema.js';
import { isTerminal } from './types.js';
import type {
  CorruptRun, NewRun, RunFilter, RunPhase, RunProcess, RunReason, RunRecord, RunUpdate, Store,
} from './types.js';

/** `$XDG_STATE_HOME/keelson`, or `~/.local/state/keelson` (XDG Base Directory spec: a relative
 * XDG_STATE_HOME is invalid and ignored). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'keelson');
}

export interface FileStoreOptions {
  /** The state dir; created if missing. @default defaultStateDir() */
  readonly stateDir?: string;
  /** How long a transition waits for another process's lock on the same run. @default 10 s */
  readonly lockTimeoutMs?: number;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** Time source for record timestamps. @default the system clock */
  readonly clock?: Clock;
  /** Own the state dir for this store's life: a second process asking for it fails with
   * StateDirBusyError. For processes that run pipelines (watch, daemon, run); readers (runs,
   * logs) open without it. @default false */
  readonly exclusive?: boolean;
}

const DEFAULTS = { lockTimeoutMs: 10_000 } as const;
/** Run files read at once by listRuns. */
const LIST_READ_BATCH = 64;

// Run ids are DNS labels; anything else never names a file (no path tricks through an id).
const RUN_FILE_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The embedded store: plain files under the state dir.
 *
 * ```
 * <stateDir>/runs/<id>.json     one record per run, replaced atomically (temp + fsync + rename)
 * <stateDir>/logs/<id>.log      append-only (O_APPEND: writes from two processes never overlap)
 * <stateDir>/state/<key>.json   JSON state, key encoded to a safe file name
 * <stateDir>/locks/<id>.lock    held during a transition, so two processes do not race
 * <stateDir>/owner.lock         the process that runs pipelines here (`exclusive`)
 * ```
 * Logs are not fsynced: a kill -9 loses nothing (the kernel has the data), a power cut may lose
 * the last lines of a log but never a record.
 */
export class FileStore implements Store {
  readonly description: string;
  private readonly queue = new KeyedQueue();
  private readonly finishedRuns = new Map<string, RunRecord>();
  private readonly redaction = new RunLogRedaction();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly lockTimeoutMs: number;
  private ownerLock: StateDirLock | undefined;
  /** This process, as ownerAlive() recognises it after a crash: `local:<pid>@<start time>`. */
  readonly owner: string;
  readonly ownerTtlMs = 0;

  private constructor(readonly stateDir: string, options: FileStoreOptions) {
    this.description = `file:${stateDir}`;
    this.logger = options.logger ?? silentLogger();
    this.clock = options.clock ?? systemClock;
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULTS.lockTimeoutMs;
    if (!(this.lockTimeoutMs > 0)) throw new RangeError(`lockTimeoutMs must be positive, got ${this.lockTimeoutMs}`);
    const me = processIdentity(process.pid);
    this.owner = `local:${process.pid}@${me?.startTime ?? ''}`;
  }

  /** Opens (and creates) the state dir, and clears temp files that killed processes left. */
  static async open(options: FileStoreOptions = {}): Promise<FileStore> {
    const stateDir = resolve(options.stateDir ?? defaultStateDir());
    const store = new FileStore(stateDir, options);
    try {
      const info = await stat(stateDir).catch(() => undefined);
      if (info && !info.isDirectory()) throw new StoreConfigError(stateDir, 'state dir is not a directory');
      for (const sub of ['runs', 'logs', 'state', 'locks']) {
        await mkdir(join(stateDir, sub), { recursive: true, mode: 0o700 });
        await removeStaleTemps(join(stateDir, sub));
      }
      if (options.exclusive) store.ownerLock = await StateDirLock.acquire(join(stateDir, 'owner.lock'), stateDir);
    } catch (error) {
      if (error instanceof StoreConfigError || error instanceof StateDirBusyError) throw error;
      throw new StoreUnavailableError(store.description, `cannot use state dir: ${(error as Error).message}`, { cause: error });
    }
    return store;
  }

  async createRun(run: NewRun): Promise<RunRecord> {
    const path = this.runPath(run.id);
    if (!path) throw new RangeError(`"${run.id}" is not a run id`);
    const record = newRunRecord(run, this.clock(), this.owner);
    if (!(await createFileExclusive(path, `${JSON.stringify(record, null, 2)}\n`))) {
      throw new RunExistsError(run.id, this.description);
    }
    if (!isTerminal(run.phase)) this.redaction.begin(run.id);
    return record;
  }

  async transitionRun(
    id: RunId, phase: RunPhase, reason: RunReason, message: string, update?: RunUpdate,
  ): Promise<RunRecord> {
    // The end of the log held back as a possible beginning of a secret is written before the run ends.
    if (isTerminal(phase)) await this.writeLog(id, this.redaction.end(id));
    return this.updateRun(id, (current) => applyTransition(current, phase, reason, message, update, this.clock()));
  }

  async recordRunProcess(id: RunId, process: RunProcess): Promise<void> {
    await this.updateRun(id, (current) => withRunProcess(current, process));
  }

  /** Whether the process that created a run is still running (same pid, same start time). */
  async ownerAlive(owner: string): Promise<boolean> {
    const match = /^local:(\d+)@(.*)$/.exec(owner);
    if (!match) return false;
    return isRunning({ pid: Number(match[1]), ...(match[2] ? { startTime: match[2] } : {}) });
  }

  /** Read, change and replace one record under its lock file. */
  private async updateRun(id: RunId, change: (current: RunRecord) => RunRecord): Promise<RunRecord> {
    const path = this.runPath(id);
    if (!path) throw new RunNotFoundError(id, this.description);
    return this.queue.run(`run:${id}`, async () => {
      const locked = await withFileLock(join(this.stateDir, 'locks', `${id}.lock`), async () => {
        const current = await this.readRun(id, path);
        if (!current) throw new RunNotFoundError(id, this.description);
        const next = change(current);
        await writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`);
        return next;
      }, { timeoutMs: this.lockTimeoutMs });
      if (!locked.ran) {
        throw new StoreUnavailableError(this.description,
          `run "${id}" is locked by process ${locked.holder.split(':')[0]}; try again when it has finished`);
      }
      return locked.value;
    });
  }

  async getRun(id: RunId): Promise<RunRecord | undefined> {
    const path = this.runPath(id);
    return path ? this.readRun(id, path) : undefined;
  }

  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const limit = listLimit(filter);
    const dir = join(this.stateDir, 'runs');
    const ids = await this.runIds();
    const records: RunRecord[] = [];
    // Reads in parallel batches; finished records never change, so they are read once per process.
    for (let start = 0; start < ids.length; start += LIST_READ_BATCH) {
      const batch = await Promise.all(ids.slice(start, start + LIST_READ_BATCH).map((id) => this.listedRun(id, join(dir, `${id}.json`))));
      for (const record of batch) if (record && matchesFilter(record, filter)) records.push(record);
    }
    return records.sort(compareNewestFirst).slice(0, limit);
  }

  /** Records that listRuns leaves out because they do not parse, oldest file name first. */
  async corruptRuns(): Promise<CorruptRun[]> {
    const dir = join(this.stateDir, 'runs');
    const corrupt: CorruptRun[] = [];
    for (const id of (await this.runIds()).sort()) {
      if (this.finishedRuns.has(id)) continue;
      const path = join(dir, `${id}.json`);
      const text = await readIfExists(path);
      const parsed = text === undefined ? undefined : parseRunFile(id, text);
      if (parsed && 'problem' in parsed) corrupt.push({ id, where: path, problem: parsed.problem });
    }
    return corrupt;
  }

  private async runIds(): Promise<string[]> {
    const names = await readdir(join(this.stateDir, 'runs'));
    return names.filter((name) => !isTempName(name) && name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length));
  }

  private async listedRun(id: string, path: string): Promise<RunRecord | undefined> {
    const cached = this.finishedRuns.get(id);
    if (cached) return cached;
    try {
      const record = await this.readRun(id, path);
      if (record && isTerminal(record.phase)) this.finishedRuns.set(id, record);
      return record;
    } catch (error) {
      // One damaged file must not hide every other run.
      this.logger.warn({ err: error, file: path }, 'skipping unreadable run record');
      return undefined;
    }
  }

  appendLog(id: RunId, text: string): Promise<void> {
    return this.writeLog(id, this.redaction.redact(id, text));
  }

  private async writeLog(id: RunId, text: string): Promise<void> {
    if (text === '') return;
    const bytes = Buffer.from(text, 'utf8');
    // Queued before the first await, so that appends land in call order.
    await this.queue.run(`log:${id}`, async () => {
      const path = await this.existingLogPath(id);
      // One write(2) per append on an O_APPEND descriptor: concurrent writers never interleave.
      const handle = await open(path, 'a', 0o600);
      try {
        let written = 0;
        while (written < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, written);
          written += bytesWritten;
        }
      } finally {
        await handle.close();
      }
    });
  }

  async readLog(id: RunId, fromOffset = 0): Promise<{ text: string; offset: number }> {
    if (!Number.isInteger(fromOffset) || fromOffset < 0) throw new RangeError(`log offset must be a whole number >= 0, got ${fromOffset}`);
    const path = await this.existingLogPath(id);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', offset: fromOffset };
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size <= fromOffset) return { text: '', offset: fromOffset };
      const buffer = Buffer.alloc(size - fromOffset);
      let read = 0;
      while (read < buffer.length) {
        const { bytesRead } = await handle.read(buffer, read, buffer.length - read, fromOffset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const complete = completeUtf8Length(buffer.subarray(0, read));
      return { text: buffer.toString('utf8', 0, complete), offset: fromOffset + complete };
    } finally {
      await handle.close();
    }
  }

  async getState<T>(key: string): Promise<T | undefined> {
    const path = this.statePath(key);
    const text = await readIfExists(path);
    if (text === undefined) return undefined;
    let parsed: { key?: unknown; value?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (error) {
      throw new StoreCorruptError(path, 'state file is not JSON', { cause: error });
    }
    // The file keeps its key: a long key's hashed file name is checked against it.
    return parsed.key === key ? (parsed.value as T) : undefined;
  }

  /** Stores a JSON-serialisable value; `undefined` deletes the key. */
  async setState<T>(key: string, value: T): Promise<void> {
    if (value === undefined) return this.deleteState(key);
    const path = this.statePath(key);
    await this.queue.run(`state:${key}`, () => writeFileAtomic(path, `${JSON.stringify({ key, value })}\n`));
  }

  async deleteState(key: string): Promise<void> {
    const path = this.statePath(key);
    await this.queue.run(`state:${key}`, () => rm(path, { force: true }));
  }

  /** Waits for this instance's pending writes and gives up the state dir (exclusive). */
  async close(): Promise<void> {
    await this.queue.drain();
    await this.ownerLock?.release();
    this.ownerLock = undefined;
  }

  private runPath(id: string): string | undefined {
    return RUN_FILE_ID.test(id) ? join(this.stateDir, 'runs', `${id}.json`) : undefined;
  }

  private async readRun(id: string, path: string): Promise<RunRecord | undefined> {
    const text = await readIfExists(path);
    if (text === undefined) return undefined;
    const parsed = parseRunFile(id, text);
    if ('problem' in parsed) throw new StoreCorruptError(path, parsed.problem);
    return parsed.record;
  }

  private async existingLogPath(id: RunId): Promise<string> {
    const path = this.runPath(id);
    if (!path || !(await stat(path).catch(() => undefined))) throw new RunNotFoundError(id, this.description);
    return join(this.stateDir, 'logs', `${id}.log`);
  }

  private statePath(key: string): string {
    if (typeof key !== 'string' || key === '') throw new RangeError('state key must be a non-empty string');
    return join(this.stateDir, 'state', `${stateFileName(key)}.json`);
  }
}

/**
 * A file name for a state key: lower-case letters, digits, `_` and `-` stay, every other UTF-8
 * byte becomes `%HH` (upper case too, so keys differing in case stay apart on macOS). Long keys
 * are cut and get a hash of the whole key, staying under the 255-byte file name limit.
 */
export function stateFileName(key: string): string {
  let name = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    name += /[a-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (name.length <= 180) return name;
  return `${name.slice(0, 120)}~${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

function parseRunFile(id: string, text: string): { record: RunRecord } | { problem: string } {
  const parsed = parseStoredRun(text);
  if ('problem' in parsed) return { problem: `bad run record: ${parsed.problem}` };
  if (parsed.record.id !== id) return { problem: `holds run "${parsed.record.id}", not "${id}"` };
  return parsed;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
