import type { ServerResponse } from 'node:http';
import type { RunId } from '../domain/index.js';
import { messageOf } from '../errors.js';
import { redactSecrets, type Logger } from '../log/index.js';
import { followLog } from '../store/index.js';
import type { ServerStore } from './types.js';

export interface LogStreamOptions {
  readonly store: ServerStore;
  readonly runId: RunId;
  /** Byte offset already shown (the page's server-rendered log, or Last-Event-ID on a reconnect) */
  readonly fromOffset: number;
  readonly pollMs: number;
  /** Aborts when the client goes away or the server closes */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

const HEARTBEAT_MS = 15_000;

/**
 * Streams a run's log as server-sent events until the run ends:
 *   `event: log`  with `id: <byte offset after this text>` (EventSource resends it as
 *                  Last-Event-ID on reconnect, so nothing is repeated or lost)
 *   `event: end`  with `{"phase": ...}` once the run is over and the log is drained.
 *   `event: failure` with a one-line message if the store fails.
 */
export async function streamLog(response: ServerResponse, options: LogStreamOptions): Promise<void> {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store, no-transform',
    'x-accel-buffering': 'no', // nginx would otherwise hold the stream back
  });
  response.write('retry: 2000\n\n');
  // Comments keep proxies with idle timeouts from cutting a quiet build's stream.
  const heartbeat = setInterval(() => response.write(': keep-alive\n\n'), HEARTBEAT_MS);
  let offset = options.fromOffset;
  try {
    for await (const chunk of followLog(options.store, options.runId, { signal: options.signal, pollInterval: options.pollMs, fromOffset: offset })) {
      offset += Buffer.byteLength(chunk, 'utf8');
      response.write(`id: ${offset}\nevent: log\n${sseData(redactSecrets(chunk))}\n`);
    }
    if (!options.signal.aborted) {
      const run = await options.store.getRun(options.runId);
      response.write(`event: end\ndata: ${JSON.stringify({ phase: run?.phase ?? 'unknown' })}\n\n`);
    }
  } catch (error) {
    options.logger.warn({ run: options.runId, err: messageOf(error) }, 'log stream failed');
    response.write(`event: failure\n${sseData(redactSecrets(messageOf(error)))}\n`);
  } finally {
    clearInterval(heartbeat);
    response.end();
  }
}

/**
 * One `data:` line per line of text. The client joins them with "\n", so text ending in a
 * newline round-trips exactly (its last, empty line is a last empty `data:`). A lone CR would
 * end a line in SSE, so CRLF and CR become LF.
 */
export function sseData(text: string): string {
  return text.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join('');
}
