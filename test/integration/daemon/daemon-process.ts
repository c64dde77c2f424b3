/**
 * `keelson daemon` as a child process, as a user runs it: `--port 0` and the bound URL read from
 * its "keelson daemon started" log line (JSON on stderr), its log lines kept for the test to wait
 * on, stopped by a signal. stopAllDaemons() in `after` kills whatever a failed test left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { eventually } from '../../support/cluster.js';
export { until } from '../../support/wait.js';

export interface LogLine {
  readonly msg?: string;
  readonly level?: number;
  readonly [field: string]: unknown;
}

export interface DaemonProcess {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly pid: number;
  /** Every JSON log line so far */
  readonly logs: readonly LogLine[];
  /** Resolves with the first log line (already seen or to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, what: string, limitMs?: number): Promise<LogLine>;
  /** Sends `signal` and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/**
 * Starts `keelson daemon ARGS... --port 0 --host 127.0.0.1` and waits until it serves. `nodeArgs`
 * go to node itself (`--cpu-prof`, which NODE_OPTIONS may not carry).
 */
export async function startDaemon(args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [...nodeArgs, ...CLI_ENTRY, 'daemon', '--port', '0', '--host', '127.0.0.1', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, KEELSON_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const logs: LogLine[] = [];
  const waiters = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let other = '';
  let pending = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        other = (other + text + '\n').slice(-4000);
        continue;
      }
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { other = (other + chunk).slice(-4000); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const waitForLog = (match: (line: LogLine) => boolean, what: string, limitMs = 60_000): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = { match, resolve: (line: LogLine) => { clearTimeout(timer); resolve(line); } };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`gave up waiting for the daemon to log ${what}; last lines: ${JSON.stringify(logs.slice(-5))} ${other}`));
      }, limitMs);
      waiters.add(waiter);
      void exited.then(({ code, signal }) => {
        if (!waiters.delete(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`the daemon exited (${code ?? signal}) before logging ${what}: ${other}${JSON.stringify(logs.slice(-5))}`));
      });
    });
  };

  const started = await waitForLog((line) => line.msg === 'keelson daemon started', '"keelson daemon started"');
  return {
    url: String(started.url),
    pid: child.pid!,
    logs,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Kills the daemons a failed test left behind (each by its own pid). */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...running].map((child) => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  })));
}

/** Waits until `check` returns a value (not undefined/false): a bounded wait, not a timing assertion. */
