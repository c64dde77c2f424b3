const CLEAR_LINE = '\r\x1b[2K';

/**
 * The status line (a progress spinner) at the bottom of a terminal, and every write that shares
 * the terminal with it: log lines and step output go through `write`, which takes the status
 * line away, writes, and puts it back below. So the two never overwrite each other, whichever
 * of stdout and stderr the text goes to. While a write left a line unfinished (step output
 * without its newline yet) the status line stays hidden, so it never lands inside that line.
 */
export class TerminalStatus {
  private status: string | undefined;
  private atLineStart = true;

  constructor(private readonly stream: NodeJS.WritableStream = process.stderr) {}

  /** Writes `text` above the status line; `to` defaults to the status line's own stream. */
  write(text: string, to: NodeJS.WritableStream = this.stream): void {
    if (text.length === 0) return;
    const shown = this.status !== undefined && this.atLineStart;
    if (shown) this.stream.write(CLEAR_LINE);
    to.write(text);
    this.atLineStart = text.endsWith('\n');
    if (this.status !== undefined && this.atLineStart) this.stream.write(this.status);
  }

  /** Shows (or replaces) the status line. */
  show(line: string): void {
    this.status = line;
    if (this.atLineStart) this.stream.write(`${CLEAR_LINE}${line}`);
  }

  /** Removes the status line. */
  hide(): void {
    if (this.status !== undefined && this.atLineStart) this.stream.write(CLEAR_LINE);
    this.status = undefined;
  }
}

/** The process's terminal (stderr): the pretty logger and the CLI's progress share it. */
export const terminal = new TerminalStatus();
