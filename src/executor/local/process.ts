import { spawn } from 'node:child_process';
import type { RunLogSink } from '../types.js';

export interface CommandOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: RunLogSink;
  readonly signal: AbortSignal;
  /** Sent to the process group on abort before SIGKILL. @default 5000 */
  readonly killGraceMs?: number;
}

export interface CommandResult {
  /** null when the process was killed by a signal */
  readonly exitCode: number | null;
  readonly aborted: boolean;
  /** The last 64 KiB of output, for callers that parse it (digests, errors). */
  readonly tail: string;
}

const TAIL_BYTES = 64 * 1024;

/**
 * Runs a command in its own process group, streaming stdout and stderr into the run log. On
 * abort the whole group gets SIGTERM, then SIGKILL after a grace period, so a step's children
 * (a test server, a build) do not outlive the run.
 */
export function runCommand(command: string, args: readonly string[], options: CommandOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    let tail = '';
    const keepTail = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      options.log(text);
      tail = (tail + text).slice(-TAIL_BYTES);
    };
    if (options.signal.aborted) {
      resolve({ exitCode: null, aborted: true, tail });
      return;
    }
    const child = spawn(command, args as string[], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const onAbort = (): void => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), options.killGraceMs ?? 5000);
      killTimer.unref();
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', keepTail);
    child.stderr.on('data', keepTail);
    child.on('error', (error) => {
      options.log(`keelson: cannot start ${command}: ${error.message}\n`);
    });
    child.on('close', (code) => {
      options.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // Children that ignored SIGTERM but outlived their parent are still in the group.
      if (options.signal.aborted) killGroup('SIGKILL');
      resolve({ exitCode: code, aborted: options.signal.aborted, tail });
    });
  });
}
