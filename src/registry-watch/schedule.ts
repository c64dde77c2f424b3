import cron from 'node-cron';
import { Duration } from '../domain/index.js';
import { InputError } from '../errors.js';

/** When a poll job runs: `@every 30s`, a 5-field cron or Keel's 6-field cron with seconds. */
export interface Schedule {
  /** As written, e.g. `@every 1m` or `0 *\/5 * * * *` */
  readonly text: string;
  /** The first run strictly after `after` (epoch ms). */
  next(after: number): number;
  /** The usual gap between runs, to pick the most frequent of several schedules. */
  period(from: number): number;
  /**
   * The first run at or after `from` of this schedule shifted late by `offset` ms (a job's
   * stable jitter). `@every` runs are aligned to the epoch, so a job keeps its place in the
   * interval whenever it was added; cron runs are the cron times plus the offset.
   */
  at(from: number, offset: number): number;
  /** How far a job may be shifted: the whole interval for `@every`, at most a minute after a cron time. */
  spread(from: number): number;
}

/** Cron jobs start within this long after their time, so one `0 * * * *` does not fire them all at once. */
const CRON_SPREAD_MS = 60_000;

/** The part of node-cron's task we use: its matcher finds the next matching second from any date. */
interface TimeMatcher {
  getNextMatch(date: Date): Date;
}

class EverySchedule implements Schedule {
  constructor(readonly text: string, private readonly interval: Duration) {}

  next(after: number): number {
    return after + this.interval.milliseconds;
  }

  period(): number {
    return this.interval.milliseconds;
  }

  at(from: number, offset: number): number {
    const period = this.interval.milliseconds;
    return Math.ceil((from - offset) / period) * period + offset;
  }

  spread(): number {
    return this.interval.milliseconds;
  }
}

class CronSchedule implements Schedule {
  constructor(readonly text: string, private readonly matcher: TimeMatcher) {}

  next(after: number): number {
    return this.matcher.getNextMatch(new Date(after)).getTime(); // strictly after, whole seconds
  }

  period(from: number): number {
    const first = this.next(from);
    return this.next(first) - first;
  }

  at(from: number, offset: number): number {
    return this.next(from - offset - 1) + offset;
  }

  spread(from: number): number {
    return Math.min(this.period(from), CRON_SPREAD_MS);
  }
}

/** Robfig-cron descriptors that Keel users write and node-cron spells differently or not at all. */
const DESCRIPTORS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 0 1 1 *',
  '@annually': '0 0 0 1 1 *',
  '@monthly': '0 0 0 1 * *',
  '@weekly': '0 0 0 * * 0',
  '@daily': '0 0 0 * * *',
  '@midnight': '0 0 0 * * *',
  '@hourly': '0 0 * * * *',
};

/** The smallest gap we poll at; a registry is not a busy loop. */
const MIN_INTERVAL_MS = 1000;

/**
 * Parses a poll schedule once, at the edge (`keel.sh/pollSchedule`, `--schedule`). Cron times are
 * in UTC, like Keel's. `field` names the source in the InputError for a bad schedule.
 */
export function parseSchedule(text: string, field = 'schedule'): Schedule {
  const trimmed = text.trim();
  if (trimmed.startsWith('@every')) {
    const interval = Duration.tryParse(trimmed);
    if (!interval || !/^@every\s+\S/.test(trimmed)) {
      throw new InputError(field, `"${text}" is not a schedule (expected e.g. "@every 30s", "@every 1m30s" or a cron expression)`);
    }
    if (interval.milliseconds < MIN_INTERVAL_MS) throw new InputError(field, `"${text}" is too frequent (at least 1s)`);
    return new EverySchedule(trimmed, interval);
  }
  const expression = DESCRIPTORS[trimmed] ?? trimmed;
  const validation = cron.validateDetailed(expression);
  if (!validation.valid) {
    const reasons = validation.errors.map((e) => e.message).join('; ');
    throw new InputError(field, `"${text}" is not a schedule: ${reasons} (expected e.g. "@every 30s", "*/5 * * * *" or "0 */5 * * * *")`);
  }
  const task = cron.createTask(expression, () => undefined, { timezone: 'UTC' });
  const matcher = (task as unknown as { timeMatcher?: TimeMatcher }).timeMatcher;
  void task.destroy();
  if (typeof matcher?.getNextMatch !== 'function') {
    throw new Error('node-cron no longer exposes timeMatcher.getNextMatch; update src/registry-watch/schedule.ts');
  }
  return new CronSchedule(trimmed, matcher);
}
