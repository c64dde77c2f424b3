import { pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import { redactSecrets } from './secrets.js';
import { terminal, TerminalStatus } from './terminal.js';

export type { Logger } from 'pino';

/** Paths that hold credentials in anything we might log; pino replaces them before writing. */
const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'secret', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'auth', '*.auth', 'credentials', '*.credentials',
];

export interface LoggerOptions {
  /** @default 'info', or KEELSON_LOG_LEVEL */
  readonly level?: string;
  /** Pretty output for people, one line per event. @default true when logging to stderr and it is a TTY */
  readonly pretty?: boolean;
  /** Where lines go. @default stderr, so stdout stays for command output */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.KEELSON_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (options.destination === undefined && Boolean(process.stderr.isTTY));
  const base = {
    level,
    base: undefined,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    hooks: {
      // Registered secrets are scrubbed from message strings too, not only from known paths.
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)));
      },
    },
    formatters: {
      log(object: Record<string, unknown>) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(object)) out[k] = typeof v === 'string' ? redactSecrets(v) : v;
        return out;
      },
    },
  };
  if (pretty && !options.destination) return pino(base, prettyTerminal());
  if (pretty) return pino(base, prettyTerminal(options.destination, new TerminalStatus(options.destination)));
  return pino(base, (options.destination ?? pino.destination({ fd: 2, sync: true })) as pino.DestinationStream);
}

/** A logger that writes nothing, for library callers and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Pretty lines for people, one per event (`12:01:02 INFO: git watcher started {"watches":1}`),
 * written in this thread through the terminal's status line so a spinner never overwrites them.
 */
function prettyTerminal(stream: NodeJS.WritableStream = process.stderr, status: TerminalStatus = terminal): pino.DestinationStream {
  const format = pinoPretty.prettyFactory({
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname',
    colorize: Boolean((stream as NodeJS.WriteStream).isTTY),
  });
  return { write: (line: string) => status.write(format(line), stream) };
}
