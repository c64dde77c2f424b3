import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { redactSecrets } from '../log/index.js';
import { GitCommandError } from './errors.js';

export const DEFAULT_GIT_TIMEOUT_MS = 120_000;

export interface RunGitOptions {
  readonly cwd?: string;
  /** Added to the safe environment from `gitEnv()` */
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** @default DEFAULT_GIT_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Exit statuses that are answers rather than failures (`rev-parse --verify -q` exits 1).
   * @default [0] */
  readonly okStatuses?: readonly number[];
}

export interface GitResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

/** Variables that would point git at another repository, index or work tree than the one we
 * name, e.g. when keelson itself runs from a git hook. */
const INHERITED_REPO_VARIABLES = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_PREFIX'];

/**
 * The environment every git command runs with: git must never wait for a person. No terminal
 * prompt, no askpass program, ssh in batch mode (an unknown host key or a passphrase fails
 * instead of hanging), C locale so that the messages we classify are stable.
 */
export function gitEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of INHERITED_REPO_VARIABLES) delete env[name];
  Object.assign(env, {
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GCM_INTERACTIVE: 'never',
    LC_ALL: 'C',
    LANGUAGE: 'C',
  });
  // A user's own GIT_SSH(_COMMAND) wins; it is theirs to make non-interactive.
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return Object.assign(env, extra);
}

/** Removes `user:password@` from any URL in `text`, then registered secrets. */
export function scrubCredentials(text: string): string {
  return redactSecrets(text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1'));
}

/** git's own explanation from stderr, without hints, progress or credentials, on one line. */
export function gitMessage(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('hint:'));
  // The fatal/error lines say what happened; the advice after them ("Please make sure you
  // have the correct access rights") does not.
  const errors = lines.filter((l) => /^(fatal|error|remote):/i.test(l));
  const text = (errors.length > 0 ? errors : lines).slice(-3).map((l) => l.replace(/^(fatal|error): /i, '')).join('; ');
  return scrubCredentials(text.length > 400 ? `${text.slice(0, 400)}...` : text) || 'no message from git';
}

/** Runs git with an argument array (never a shell) and collects its output. */
export function runGit(args: readonly string[], options: RunGitOptions = {}): Promise<GitResult> {
  const okStatuses = options.okStatuses ?? [0];
  return new Promise<GitResult>((resolve, reject) => {
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawnGit(args, options);
    } catch (error) {
      reject(error);
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError') reject(options.signal?.reason ?? error);
      else if (error.code === 'ENOENT') reject(new GitCommandError(args[0] ?? '', null, 'git is not installed (not found on PATH)', { cause: error }));
      else reject(new GitCommandError(args[0] ?? '', null, error.message, { cause: error }));
    });
    child.on('close', (status, signalName) => {
      if (options.signal?.aborted) {
        reject(options.signal.reason);
        return;
      }
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (status !== null && okStatuses.includes(status)) {
        resolve({ stdout, stderr, status });
        return;
      }
      const detail = signalName ? `killed by ${signalName} (timed out?)` : gitMessage(stderr);
      reject(Object.assign(new GitCommandError(args[0] ?? '', status, detail), { stderr }));
    });
  });
}

/** Starts git with stdout piped, for commands whose output is a stream (`git archive`). */
export function spawnGit(args: readonly string[], options: RunGitOptions = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawn('git', [...args], {
    cwd: options.cwd,
    env: gitEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    signal: options.signal,
    timeout: options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
}

/** The stderr that git printed, when `error` came from runGit. */
export function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: unknown } | null)?.stderr;
  return typeof stderr === 'string' ? stderr : '';
}
