import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { until } from '../../support/wait.js';

const CLEAR = '\r\x1b[2K';
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** SIGTERM to keelson itself, then waits until it and its wrapper are gone. */
  readonly stop: () => Promise<void>;
}

/**
 * Starts a `keelson watch` that keeps running. With `terminal`, under a pseudo-terminal (util-linux
 * `script`, which runs keelson in its place through `exec`, so keelson is script's only child).
 */
function startWatch(args: readonly string[], terminal: boolean): Started {
  // No CI variable at all: with one (even empty) keelson draws no progress line.
  const { CI: _ci, ...rest } = process.env;
  const env = { ...rest, KEELSON_LOG_LEVEL: 'info', TERM: 'xterm' };
  const command = [process.execPath, ...CLI_ENTRY, 'watch', ...args];
  const child = terminal
    ? spawn('script', ['-qfec', `exec ${command.map(quote).join(' ')}`, '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    output: () => output,
    stop: async () => {
      let target = child.pid!;
      if (terminal) {
        const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(() => '');
        target = Number(children.trim().split(/\s+/)[0]) || target;
      }
      try { process.kill(target, 'SIGTERM'); } catch { /* already gone */ }
      await exited;
    },
  };
}

describe('keelson watch, left running', function () {
  this.timeout(120_000);
  let scratch: string;
  let repo: string;
  let running: Started | undefined;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-watch-running-'));
    repo = await makeRepo({ branch: 'main' });
    await commitFile(repo, 'a.txt', 'one');
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('--ui counts its runs on /metrics (keelson_runs_total, keelson_run_duration_seconds)', async () => {
    running = startWatch([`${repo}^main`, '--ui', '0', '--step', 'echo built', '--state-dir', path.join(scratch, 'state')], false);
    const url = await until(async () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/?"/.exec(running!.output())?.[1], 'the status page to listen');
    const metrics = await until(async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return /keelson_runs_total\{phase="succeeded",kind="build"\} 1\b/.test(text) && text;
    }, 'keelson_runs_total to count the run', 30_000);
    expect(metrics).to.match(/keelson_run_duration_seconds_count\{phase="succeeded"\} 1\b/);
  });

  it('on a terminal, clears the progress line when a run ends and keeps it clear while waiting for commits', async () => {
    running = startWatch([`${repo}^main`, '--step', 'echo hello-from-step', '--schedule', '@every 1h', '--state-dir', path.join(scratch, 'state')], true);
    await until(async () => /keelson: run \S+ succeeded/.test(running!.output()), 'the run to end');
    const atEnd = running.output().length;
    // The spinner redraws ten times a second while a stage is shown: a second of waiting shows it.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const afterwards = running.output().slice(atEnd).split(CLEAR).filter((piece) => SPINNER.test(piece));
    expect(afterwards, 'spinner frames drawn after the run ended').to.deep.equal([]);
  });
});
