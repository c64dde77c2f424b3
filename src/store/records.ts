import { redactSecrets } from '../log/index.js';
import { RunAlreadyFinishedError } from './errors.js';
import { isTerminal, type NewRun, type RunFilter, type RunPhase, type RunReason, type RunProcess, type RunRecord, type RunUpdate } from './types.js';

/** The pure part of both stores: how records are born, change and are listed. */

export const DEFAULT_LIST_LIMIT = 100;

export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** The record for a new run; its first phase is the one it was created in. */
export function newRunRecord(run: NewRun, now: Date, owner?: string): RunRecord {
  const at = now.toISOString();
  const message = redactSecrets(run.message);
  const record: RunRecord = {
    ...withoutUndefined(run),
    ...(owner !== undefined ? { owner } : {}),
    message,
    phases: [{ phase: run.phase, reason: run.reason, message, at }],
    createdAt: at,
    ...(run.phase === 'running' ? { startedAt: at } : {}),
    ...(isTerminal(run.phase) ? { finishedAt: at } : {}),
  };
  return record;
}

/**
 * The record after a transition. Throws RunAlreadyFinishedError when the run is in a terminal
 * phase. startedAt is set on the first entry into running; finishedAt on entering a terminal
 * phase (a run that never ran has a finishedAt but no startedAt).
 */
export function applyTransition(
  record: RunRecord, phase: RunPhase, reason: RunReason, message: string, update: RunUpdate | undefined, now: Date,
): RunRecord {
  if (isTerminal(record.phase)) throw new RunAlreadyFinishedError(record.id, record.phase, phase);
  const at = now.toISOString();
  const clean = redactSecrets(message);
  return {
    ...record,
    ...(update?.exitCode !== undefined ? { exitCode: update.exitCode } : {}),
    ...(update?.image !== undefined ? { image: { ...update.image, ref: redactSecrets(update.image.ref) } } : {}),
    phase,
    reason,
    message: clean,
    phases: [...record.phases, { phase, reason, message: clean, at }],
    ...(phase === 'running' && record.startedAt === undefined ? { startedAt: at } : {}),
    ...(isTerminal(phase) ? { finishedAt: at } : {}),
  };
}

/** The record with one more child process group; a finished run starts no more children. */
export function withRunProcess(record: RunRecord, process: RunProcess): RunRecord {
  if (isTerminal(record.phase)) throw new RunAlreadyFinishedError(record.id, record.phase, record.phase);
  return { ...record, processes: [...(record.processes ?? []), withoutUndefined(process)] };
}

/** Newest first: by creation time, then by id (run ids sort by their creation second). */
export function compareNewestFirst(a: RunRecord, b: RunRecord): number {
  const byTime = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (byTime !== 0) return byTime;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export function matchesFilter(record: RunRecord, filter: RunFilter): boolean {
  if (filter.watch !== undefined && record.watch !== filter.watch) return false;
  if (filter.phase !== undefined && record.phase !== filter.phase) return false;
  return true;
}

/** The limit to apply: the filter's, or the default; a non-positive or fractional one is a bug. */
export function listLimit(filter: RunFilter): number {
  const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
  if (!(limit === Number.POSITIVE_INFINITY || (Number.isInteger(limit) && limit > 0))) {
    throw new RangeError(`listRuns limit must be a positive whole number, got ${limit}`);
  }
  return limit;
}

/**
 * The longest prefix of `bytes` that ends on a UTF-8 character boundary. A reader can race a
 * writer in the middle of a multi-byte character; it then returns the complete part and an
 * offset before the cut, and picks up the rest on its next read.
 */
export function completeUtf8Length(bytes: Uint8Array): number {
  const end = bytes.length;
  // Look back at most 3 bytes for the lead byte of the last character.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return end - i >= need ? end : i;
  }
  return end;
}

/** A copy without keys whose value is undefined, so that a record equals its JSON round trip. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
