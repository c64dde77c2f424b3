import cron from 'node-cron';
import { Duration } from '../domain/index.js';
import { InputError } from '../errors.js';

/** When a watch polls. */
export interface Schedule {
  readonly text: string;
  readonly kind: 'every' | 'cron';
  /** Milliseconds from now until the next tick, before jitter. */
  nextDelayMs(): number;
  /** The gap between ticks around now; jitter and backoff are scaled by it. */
  intervalMs(): number;
  /** Releases the cron task; the schedule cannot be used afterwards. */
  dispose(): void;
}

const MIN_INTERVAL_MS = 1000;

/**
 * `@every 30s` (or a bare duration, `30s`), or a cron expression with 5 or 6 fields (node-cron:
 * seconds first when 6). `where` names the option or field in the error.
 */
export function parseSchedule(text: string, where = '--schedule'): Schedule {
  const trimmed = text.trim();
  const duration = Duration.tryParse(trimmed);
  if (duration) {
    if (duration.milliseconds < MIN_INTERVAL_MS) throw new InputError(where, `"${text}" is too often (at least @every 1s)`);
    const ms = duration.milliseconds;
    return { text: trimmed, kind: 'every', nextDelayMs: () => ms, intervalMs: () => ms, dispose: () => undefined };
  }
  if (trimmed.startsWith('@')) throw new InputError(where, `"${text}" is not a schedule (expected @every DURATION such as @every 30s, or a cron expression)`);
  const check = cron.validateDetailed(trimmed);
  if (!check.valid) {
    const why = check.errors.map((e) => e.message).join('; ');
    throw new InputError(where, `"${text}" is not a cron expression or @every DURATION${why ? `: ${why}` : ''}`);
  }
  // A task that is never started: only its next-run arithmetic is used, our own timer ticks.
  const task = cron.createTask(trimmed, () => undefined);
  const upcoming = (): [number, number] => {
    const [first, second] = task.getNextRuns(2);
    const now = Date.now();
    const a = first ? first.getTime() - now : 60_000;
    return [Math.max(0, a), second && first ? second.getTime() - first.getTime() : 60_000];
  };
  return {
    text: trimmed,
    kind: 'cron',
    nextDelayMs: () => upcoming()[0],
    intervalMs: () => upcoming()[1],
    dispose: () => void task.destroy(),
  };
}

/** The wait after `failures` failed polls in a row: doubling from one interval, capped at
 * `maxMs` (but never below one interval, so a slow schedule is not sped up). 0 when healthy. */
export function backoffMs(failures: number, intervalMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(Math.max(maxMs, intervalMs), intervalMs * 2 ** Math.min(failures, 30));
}
