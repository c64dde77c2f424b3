import { spawn } from 'node:child_process';
import { messageOf } from '../../errors.js';
import { processIdentity } from '../../proc/index.js';
import type { RunProcess } from '../../store/index.js';
import type { RunLogSink } from '../types.js';

export interface CommandOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: RunLogSink;
  readonly signal: AbortSignal;
  /** Sent to the process group on abort before SIGKILL. @default 5000 */
  readonly killGraceMs?: number;
  /**
   * Records the child's process group (with the run, in the store) before the command runs.
   * The command starts only once this resolved, and never when it rejects: a keelson killed
   * in between leaves no process that nobody knows about.
   */
  readonly recordProcess?: (process: RunProcess) => Promise<void>;
}

export interface CommandResult {
  /** null when the process was killed by a signal */
  readonly exitCode: number | null;
  readonly aborted: boolean;
  /** The last 64 KiB of output, for callers that parse it (digests, errors). */
  readonly tail: string;
}

const TAIL_BYTES = 64 * 1024;

/** Exit status of a command that was never started because its process could not be recorded. */
export const NOT_STARTED_EXIT = 125;

/**
 * Starts the command through a few lines of sh that stay in its process group:
 * - the command is held until a line `go` arrives on stdin; EOF instead (the keelson that
 *   spawned it died before recording it, or gave up) ends it before anything ran;
 * - then sh execs the command (so it is keelson's child, as without the gate) and leaves a
 *   guard behind: keelson keeps stdin open while the command runs, and the guard kills the
 *   whole group when it reads EOF there — at once when keelson died (kill -9), so a step
 *   cannot finish its work unseen and then run again in the retry; and when the command has
 *   exited, so that nothing it left in the background outlives it.
 */
const START_GATE = [
  `IFS= read -r go && [ "$go" = go ] || exit ${NOT_STARTED_EXIT}`,
  'exec 3<&0',
  '{ IFS= read -r _ <&3; kill -KILL 0; } </dev/null >/dev/null 2>&1 &',
  'exec "$0" "$@" </dev/null 3<&-',
].join('\n');

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
    const gated = options.recordProcess !== undefined;
    const child = spawn(gated ? 'sh' : command, gated ? ['-c', START_GATE, command, ...args] : args as string[], {
      cwd: options.cwd,
      env: options.env,
      stdio: [gated ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (gated && child.pid !== undefined) {
      const identity = processIdentity(child.pid) ?? { pid: child.pid };
      child.stdin!.on('error', () => undefined); // a child that is already gone
      options.recordProcess!({ ...identity, command }).then(
        () => child.stdin!.write('go\n'),
        (error: unknown) => {
          options.log(`keelson: not starting ${command}: cannot record its process: ${messageOf(error)}\n`);
          child.stdin!.end();
        },
      );
    }
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
    child.stdout!.on('data', keepTail);
    child.stderr!.on('data', keepTail);
    child.on('error', (error) => {
      options.log(`keelson: cannot start ${command}: ${error.message}\n`);
    });
    // The command is done: its guard ends what it left behind (see START_GATE).
    child.on('exit', () => child.stdin?.end());
    child.on('close', (code) => {
      child.stdin?.destroy();
      options.signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // Children that ignored SIGTERM but outlived their parent are still in the group.
      if (options.signal.aborted) killGroup('SIGKILL');
      resolve({ exitCode: code, aborted: options.signal.aborted, tail });
    });
  });
}
