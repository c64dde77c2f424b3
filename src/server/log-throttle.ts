import type { Logger } from '../log/index.js';

/**
 * One warning that a flood of requests could repeat thousands of times a minute (bad webhook
 * signatures, wrong tokens). The first of a quiet period is logged at once with its fields; the
 * rest are counted, and each interval that had any ends with one line carrying `repeated: N`.
 */
export class ThrottledWarning {
  private timer: NodeJS.Timeout | undefined;
  private repeated = 0;

  constructor(private readonly log: Logger, private readonly message: string, private readonly intervalMs: number) {}

  note(fields: Record<string, unknown>): void {
    if (this.timer) {
      this.repeated += 1;
      return;
    }
    this.log.warn(fields, this.message);
    this.startInterval();
  }

  /** Logs what is counted and stops the timer (on shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.summarise();
  }

  private startInterval(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A flood still going keeps one line per interval; a quiet interval closes the window.
      if (this.summarise()) this.startInterval();
    }, this.intervalMs);
    this.timer.unref();
  }

  private summarise(): boolean {
    if (this.repeated === 0) return false;
    this.log.warn({ repeated: this.repeated, intervalMs: this.intervalMs }, this.message);
    this.repeated = 0;
    return true;
  }
}
