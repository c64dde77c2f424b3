import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { CLI_ENTRY, REPO_ROOT, runKeelson } from '../../support/cli.js';

interface RunJson {
  readonly id: string;
  readonly commit: string;
  readonly phase: string;
  readonly reason: string;
  readonly retryOf?: string;
}

async function runsIn(stateDir: string): Promise<RunJson[]> {
  const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
  expect(listed.status, listed.stderr).to.equal(0);
  return JSON.parse(listed.stdout) as RunJson[];
}

async function lines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('keelson watch and keelson run, end to end', function () {
  this.timeout(120_000);
  let scratch: string;
  let repo: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-watch-'));
    repo = await makeRepo({ branch: 'main' });
  });
  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('runs the step once per new commit and records each run with its commit and result', async () => {
    const marker = path.join(scratch, 'ran');
    const stateDir = path.join(scratch, 'state');
    const first = await commitFile(repo, 'a.txt', 'one');
    const args = ['watch', `${repo}^main`, '--once', '--step', `echo "$KEELSON_COMMIT" >> ${marker}`, '--state-dir', stateDir];

    const once = await runKeelson(args);
    expect(once.status, once.stderr).to.equal(0);
    expect(await lines(marker)).to.deep.equal([first]);

    const again = await runKeelson(args);
    expect(again.status, again.stderr).to.equal(0);
    expect(await lines(marker), 'same commit is not run twice').to.deep.equal([first]);

    const second = await commitFile(repo, 'a.txt', 'two');
    const third = await runKeelson(args);
    expect(third.status, third.stderr).to.equal(0);
    expect(await lines(marker)).to.deep.equal([first, second]);

    const runs = await runsIn(stateDir);
    expect(runs.map((r) => [r.commit, r.phase])).to.deep.equal([[second, 'succeeded'], [first, 'succeeded']]);
  });

  it('exits 1 when a step fails and records the failure', async () => {
    const stateDir = path.join(scratch, 'state');
    const commit = await commitFile(repo, 'a.txt', 'one');
    const result = await runKeelson(['watch', repo, '--once', '--step', 'echo about to fail; exit 3', '--state-dir', stateDir]);
    expect(result.status).to.equal(1);
    const [run] = await runsIn(stateDir);
    expect(run).to.include({ commit, phase: 'failed', reason: 'StepFailed' });
    const log = await runKeelson(['logs', run!.id, '--state-dir', stateDir]);
    expect(log.stdout).to.contain('about to fail');
  });

  it('builds the committed tree, never the dirty work tree', async () => {
    const stateDir = path.join(scratch, 'state');
    await commitFile(repo, 'a.txt', 'committed');
    await writeFile(path.join(repo, 'a.txt'), 'dirty edit');
    await writeFile(path.join(repo, 'untracked.txt'), 'not committed');
    const result = await runKeelson(['run', repo, '--step', 'cat a.txt; test ! -e untracked.txt', '--state-dir', stateDir]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('committed');
    expect(result.stdout).to.not.contain('dirty edit');
    const [run] = await runsIn(stateDir);
    expect(run).to.include({ phase: 'succeeded' });
  });

  it('rejects bad input with exit 2 and a one-line error, running nothing', async () => {
    const marker = path.join(scratch, 'ran');
    const stateDir = path.join(scratch, 'state');
    await commitFile(repo, 'a.txt', 'one');
    const step = `touch ${marker}`;
    const cases: Array<[string[], RegExp]> = [
      [['watch', repo, '--once', '--step', step, '--bogus'], /unknown option '--bogus'/],
      [['watch', path.join(scratch, 'nope'), '--once', '--step', step, '--state-dir', stateDir], /nope: no such directory/],
      [['watch', `file://${path.join(scratch, 'nope.git')}`, '--once', '--step', step, '--state-dir', stateDir], /no such repository/],
      [['watch', `${repo}^nobranch`, '--once', '--step', step, '--state-dir', stateDir], /branch "nobranch" does not exist/],
      [['watch', repo, '--once', '--step', step, '--timeout', 'soon', '--state-dir', stateDir], /--timeout: "soon" is not a duration/],
      [['watch', repo, '--once', '--step', step, '--executor', 'cloud', '--state-dir', stateDir], /unknown executor "cloud"/],
    ];
    for (const [args, message] of cases) {
      const result = await runKeelson(args);
      expect(result.status, args.join(' ')).to.equal(2);
      expect(result.stderr.trim().split('\n'), result.stderr).to.have.length(1);
      expect(result.stderr).to.match(message);
    }
    expect(await lines(marker)).to.deep.equal([]);
    expect(await stat(stateDir).then(() => 'created', () => 'absent'), 'bad input writes nothing').to.equal('absent');
  });

  it('marks a run cut off by kill -9 as interrupted on restart and retries it once', async () => {
    const stateDir = path.join(scratch, 'state');
    const started = path.join(scratch, 'started');
    const pids = path.join(scratch, 'pids');
    const commit = await commitFile(repo, 'a.txt', 'one');
    // The first attempt hangs; the retry finds the marker and succeeds at once.
    const step = `echo $$ >> ${pids}; if [ ! -e ${started} ]; then touch ${started}; sleep 300; fi`;
    const child = spawn(process.execPath, [...CLI_ENTRY, 'watch', repo, '--step', step, '--state-dir', stateDir], {
      cwd: REPO_ROOT, env: { ...process.env, KEELSON_LOG_LEVEL: 'silent' }, stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 600 && (await lines(pids)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await lines(pids), 'the first attempt started').to.have.length(1);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The step ran in its own process group, which outlives a kill -9 of keelson.
      for (const pid of await lines(pids)) {
        try { process.kill(-Number(pid), 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    expect((await runsIn(stateDir)).map((r) => r.phase)).to.deep.equal(['running']);

    const restart = await runKeelson(['watch', repo, '--once', '--step', step, '--state-dir', stateDir]);
    expect(restart.status, restart.stderr).to.equal(0);
    const runs = await runsIn(stateDir);
    expect(runs).to.have.length(2);
    const [retry, interrupted] = runs;
    expect(interrupted).to.include({ commit, phase: 'interrupted', reason: 'ProcessDied' });
    expect(retry).to.include({ commit, phase: 'succeeded', retryOf: interrupted!.id });

    const third = await runKeelson(['watch', repo, '--once', '--step', step, '--state-dir', stateDir]);
    expect(third.status).to.equal(0);
    expect(await runsIn(stateDir), 'not retried again').to.have.length(2);
  });
});
