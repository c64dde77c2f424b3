import type { Logger } from '../log/index.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Progress of long work (copying source, building, waiting for dependencies): one line that
 * redraws itself on a terminal, plain log lines otherwise (CI logs, files, pipes).
 */
export class Progress {
  private stage: string | undefined;
  private since = Date.now();
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly interactive: boolean = Boolean(process.stderr.isTTY) && process.env.CI === undefined,
  ) {}

  /** Moves to a new stage ("building team/app"). */
  update(stage: string): void {
    if (stage === this.stage) return;
    this.stage = stage;
    this.since = Date.now();
    if (!this.interactive) {
      this.logger.info({ stage }, 'progress');
      return;
    }
    this.timer ??= setInterval(() => this.draw(), 100).unref();
    this.draw();
  }

  /** Output is about to be written: clear the line so they do not mix; the next tick redraws. */
  clear(): void {
    if (this.interactive && this.stage !== undefined) this.stream.write('\r\x1b[2K');
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.stage = undefined;
  }

  private draw(): void {
    if (this.stage === undefined) return;
    const seconds = Math.floor((Date.now() - this.since) / 1000);
    const columns = this.stream.columns ?? 80;
    const line = `${FRAMES[this.frame++ % FRAMES.length]} ${this.stage} · ${seconds}s`;
    this.stream.write(`\r\x1b[2K${line.slice(0, Math.max(10, columns - 1))}`);
  }
}
