import { redactSecrets, StreamRedactor } from '../log/index.js';

/**
 * Redacts run logs as the streams they are: a secret split between two appends (a process's
 * 64 KiB reads) is still hidden. Each run created by this process gets a StreamRedactor that
 * holds back a possible beginning of a secret until the next append; the run's terminal
 * transition flushes it. Appends to other runs (created elsewhere, or already finished) are
 * redacted one by one.
 */
export class RunLogRedaction {
  private readonly streams = new Map<string, StreamRedactor>();

  begin(id: string): void {
    this.streams.set(id, new StreamRedactor());
  }

  /** The redacted text to write now ('' when all of it is held back). */
  redact(id: string, text: string): string {
    const stream = this.streams.get(id);
    return stream ? stream.push(text) : redactSecrets(text);
  }

  /** What was held back for the run, redacted; the run's log stream is over. */
  end(id: string): string {
    const stream = this.streams.get(id);
    this.streams.delete(id);
    return stream ? stream.flush() : '';
  }
}
