import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the CLI runs from here so that `--import tsx` resolves. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * How to start the CLI: the compiled `dist/` when it is newer than every source file (as after
 * `npm test`, which builds first; several times faster to start), else the TypeScript sources
 * through tsx, so a test never runs stale code.
 */
export const CLI_ENTRY: readonly string[] = (() => {
  try {
    if (statSync(join(REPO_ROOT, 'dist/cli/main.js')).mtimeMs >= newestMtime(join(REPO_ROOT, 'src'))) return [join(REPO_ROOT, 'dist/cli/main.js')];
  } catch {
    // no build yet
  }
  // Absolute, so that the CLI also starts from another working directory.
  return ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src/cli/main.ts')];
})();

/** Runs the real CLI entry point as a child process, as a user would; never rejects on exit status. */
export function runKeelson(args: readonly string[], options: {
  stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string;
  /** A command the CLI runs under, e.g. nsenter into a test cluster's network namespace */
  prefix?: readonly string[];
} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [file, ...rest] = [...(options.prefix ?? []), process.execPath, ...CLI_ENTRY, ...args];
    const child = spawn(file!, rest, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, KEELSON_LOG_LEVEL: 'silent', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}
