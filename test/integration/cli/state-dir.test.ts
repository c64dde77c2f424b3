import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { CLI_ENTRY, REPO_ROOT, runKeelson } from '../../support/cli.js';
import { until } from '../../support/wait.js';

interface RunJson {
  readonly id: string;
  readonly commit: string;
  readonly phase: string;
}

function startWatch(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [...CLI_ENTRY, 'watch', ...args], {
    cwd: REPO_ROOT, env: { ...process.env, KEELSON_LOG_LEVEL: 'silent' }, stdio: 'ignore',
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function readLines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

describe('one keelson per state dir', function () {
  this.timeout(120_000);
  let scratch: string;
  let repo: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-state-dir-'));
    repo = await makeRepo({ branch: 'main' });
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await killHard(child);
    // Steps of a killed watcher are ended by the next start; kill whatever a failed test left.
    for (const pid of await readLines(path.join(scratch, 'pids'))) {
      try { process.kill(-Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('refuses a second watcher at once with exit 2 naming the holder, while runs and logs still read', async () => {
    const stateDir = path.join(scratch, 'state');
    const started = path.join(scratch, 'started');
    await commitFile(repo, 'a.txt', 'one');
    const step = `echo $$ >> ${path.join(scratch, 'pids')}; touch ${started}; sleep 300`;
    const first = startWatch([`${repo}^main`, '--step', step, '--state-dir', stateDir]);
    children.push(first);
    await until(async () => (await readdir(scratch)).includes('started'), 'the first watcher to start its step');

    const second = await runKeelson(['watch', `${repo}^main`, '--once', '--step', 'true', '--state-dir', stateDir]);
    expect(second.status).to.equal(2);
    expect(second.stderr.trim().split('\n'), second.stderr).to.have.length(1);
    expect(second.stderr).to.contain(`keelson process ${first.pid}`).and.to.contain(stateDir);

    const runs = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
    expect(runs.status, runs.stderr).to.equal(0);
    const [run] = JSON.parse(runs.stdout) as RunJson[];
    expect(run?.phase, 'the second watcher did not touch the first one\'s run').to.equal('running');
    const logs = await runKeelson(['logs', run!.id, '--state-dir', stateDir]);
    expect(logs.status, logs.stderr).to.equal(0);
    expect(logs.stdout).to.contain('step 1/1');
  });

  it('is free again once the holder was killed with kill -9', async () => {
    const stateDir = path.join(scratch, 'state');
    await commitFile(repo, 'a.txt', 'one');
    const first = startWatch([`${repo}^main`, '--step', 'true', '--state-dir', stateDir, '--schedule', '@every 1h']);
    children.push(first);
    await until(async () => (await readdir(stateDir).catch((): string[] => [])).includes('owner.lock'), 'the first watcher to own the state dir');
    await killHard(first);

    const next = await runKeelson(['watch', `${repo}^main`, '--once', '--step', 'true', '--state-dir', stateDir]);
    expect(next.status, next.stderr).to.equal(0);
    expect(await readdir(stateDir), 'the lock is given back on exit').to.not.include('owner.lock');
  });

  it('resolves a relative --state-dir against the directory keelson was started in', async () => {
    const commit = await commitFile(repo, 'a.txt', 'one');
    const marker = path.join(scratch, 'ran');
    const result = await runKeelson(['watch', `${repo}^main`, '--once', '--step', `echo "$KEELSON_COMMIT" >> ${marker}`, '--state-dir', 'state'], { cwd: scratch });
    expect(result.status, result.stderr).to.equal(0);
    expect(await readLines(marker)).to.deep.equal([commit]);
    const runs = await runKeelson(['runs', '--json', '--state-dir', path.join(scratch, 'state')]);
    expect((JSON.parse(runs.stdout) as RunJson[]).map((r) => [r.commit, r.phase])).to.deep.equal([[commit, 'succeeded']]);
  });
});
