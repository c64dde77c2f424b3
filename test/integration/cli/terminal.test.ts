import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';

const run = promisify(execFile);
const CLEAR = '\r\x1b[2K';
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** Runs keelson under a pseudo-terminal (util-linux `script`), as a person at a terminal would. */
async function onTerminal(args: readonly string[]): Promise<string> {
  const command = [process.execPath, ...CLI_ENTRY, ...args].map(quote).join(' ');
  // No CI variable at all: with one (even empty) keelson draws no progress line to check.
  const { CI: _ci, ...env } = process.env;
  const { stdout } = await run('script', ['-qfec', command, '/dev/null'], {
    cwd: REPO_ROOT, env: { ...env, KEELSON_LOG_LEVEL: 'info', TERM: 'xterm' }, maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** What the terminal shows at the end: each line is what follows the last clear-line on it. */
function visibleLines(text: string): string[] {
  return text.replace(/\r\n/g, '\n').split('\n').map((line) => line.split(CLEAR).at(-1)!.replace(/\x1b\[[0-9;]*m/g, ''));
}

describe('keelson watch on a terminal', function () {
  this.timeout(120_000);
  let scratch: string;
  let repo: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-tty-'));
    repo = await makeRepo({ branch: 'main' });
    await commitFile(repo, 'a.txt', 'one');
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('shows step output live, one line per log event, the spinner never mixed into a line; then "nothing new"', async () => {
    const stateDir = path.join(scratch, 'state');
    const args = ['watch', `${repo}^main`, '--once', '--step', 'sleep 1; echo hello-from-step; sleep 1', '--state-dir', stateDir];
    const first = visibleLines(await onTerminal(args));
    expect(first).to.include('hello-from-step');
    const logLines = first.filter((line) => /\b(INFO|WARN|ERROR)\b/.test(line));
    expect(logLines.some((line) => line.includes('new commit, triggering pipeline'))).to.equal(true);
    for (const line of first) {
      expect(line, 'a log line is one line, fields included').to.not.match(/^ {4}\S/);
      if (SPINNER.test(line)) expect(line, 'the spinner is alone on its line').to.match(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] [^[]*· \d+s$/);
    }
    expect(first.some((line) => /^keelson: run \S+ succeeded/.test(line))).to.equal(true);

    const second = visibleLines(await onTerminal(args));
    expect(second.some((line) => /\^main: nothing new \(last built [0-9a-f]{7}\)$/.test(line)), second.join('\n')).to.equal(true);
    expect(second).to.not.include('hello-from-step');
  });
});
