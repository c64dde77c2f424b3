import { terminal, TerminalStatus, type Logger } from '../log/index.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Progress of long work (copying source, building, waiting for dependencies): one status line
 * that redraws itself below the log on a terminal, plain log lines otherwise (CI logs, files,
 * pipes). Output shown while it runs goes through `write`, so it never collides with the line.
 */
export class Progress {
  private stage: string | undefined;
  private since = Date.now();
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly status: TerminalStatus;

  constructor(
    private readonly logger: Logger,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly interactive: boolean = Boolean(process.stderr.isTTY) && process.env.CI === undefined,
  ) {
    this.status = stream === process.stderr ? terminal : new TerminalStatus(stream);
  }

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

  /** Writes run output (to `to`, default stdout) above the status line. */
  write(text: string, to: NodeJS.WritableStream = process.stdout): void {
    if (this.interactive) this.status.write(text, to);
    else to.write(text);
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.interactive) this.status.hide();
    this.stage = undefined;
  }

  private draw(): void {
    if (this.stage === undefined) return;
    const seconds = Math.floor((Date.now() - this.since) / 1000);
    // A terminal that reports no size (0 columns: a pty nobody sized, as under `script`) is taken as 80 wide.
    const columns = this.stream.columns || 80;
    const line = `${FRAMES[this.frame++ % FRAMES.length]} ${this.stage} · ${seconds}s`;
    this.status.show(line.slice(0, Math.max(10, columns - 1)));
  }
}
