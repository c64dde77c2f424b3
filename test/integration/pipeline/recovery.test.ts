import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newRunId } from '../../../src/domain/index.js';
import { LocalExecutor } from '../../../src/executor/index.js';
import { createLogger, silentLogger } from '../../../src/log/index.js';
import { PipelineRunner } from '../../../src/pipeline/index.js';
import { processIdentity } from '../../../src/proc/index.js';
import { FileStore, RedisStore, RunReason, type Store } from '../../../src/store/index.js';
import { PipelineSpec } from '../../../src/config/index.js';
import { Writable } from 'node:stream';
import { CLI_ENTRY, REPO_ROOT, runKeelson } from '../../support/cli.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { until } from '../../support/wait.js';

function runnerOn(store: Store, scratch: string): PipelineRunner {
  return new PipelineRunner({
    store,
    executor: new LocalExecutor(),
    materializer: { materialize: async () => {} },
    workspaceDir: path.join(scratch, 'workspaces'),
    logger: silentLogger(),
  });
}

/** A runner whose pipeline is one step that succeeds, over a materializer that writes nothing. */
function stepRunner(store: Store, scratch: string): PipelineRunner {
  return new PipelineRunner({
    store, executor: new LocalExecutor(), materializer: { materialize: async () => {} }, workspaceDir: path.join(scratch, 'workspaces'),
    logger: silentLogger(), pipeline: PipelineSpec.parse({ steps: ['true'] }),
  });
}

describe('recovery of runs a crash left behind', function () {
  this.timeout(120_000);
  let scratch: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-recovery-'));
  });
  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  describe('with the Redis store', () => {
    let redis: RunningRedis | undefined;
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });

    it('never takes over a run whose owner is alive, and ends the processes of a dead owner\'s run', async () => {
      const keyPrefix = `recovery-${randomBytes(4).toString('hex')}:`;
      const owner = await RedisStore.connect({ url: redis!.url, keyPrefix, ownerTtlMs: 1000 });
      const other = await RedisStore.connect({ url: redis!.url, keyPrefix, ownerTtlMs: 1000 });
      const sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
      try {
        const id = newRunId();
        await owner.createRun({ id, kind: 'build', watch: 'repo^main', repo: 'repo', branch: 'main', commit: 'a'.repeat(40), phase: 'running', reason: RunReason.Started, message: 'going' });
        await owner.recordRunProcess(id, { ...processIdentity(sleeper.pid!)!, command: 'sleep' });

        expect(await runnerOn(other, scratch).recoverInterruptedRuns(), 'the owner is alive').to.deep.equal([]);
        expect((await other.getRun(id))?.phase).to.equal('running');
        expect(sleeper.exitCode === null && sleeper.signalCode === null, 'its process runs on').to.equal(true);

        await owner.close(); // as the owner's key expiring after a kill -9 would
        const exited = new Promise((resolve) => sleeper.once('exit', resolve));
        const recovered = await runnerOn(other, scratch).recoverInterruptedRuns();
        expect(recovered.map((run) => [run.id, run.phase, run.reason])).to.deep.equal([[id, 'interrupted', RunReason.ProcessDied]]);
        await exited;
      } finally {
        sleeper.kill('SIGKILL');
        await other.close();
        await owner.close();
      }
    });
  });

  it('warns about a run record torn while running, naming its file, and still takes over the other runs', async () => {
    const store = await FileStore.open({ stateDir: path.join(scratch, 'state') });
    try {
      const base = { kind: 'build' as const, watch: 'repo^main', repo: 'repo', branch: 'main', commit: 'a'.repeat(40), phase: 'running' as const, reason: RunReason.Started, message: 'going' };
      const torn = await store.createRun({ ...base, id: newRunId() });
      const whole = await store.createRun({ ...base, id: newRunId() });
      const file = path.join(scratch, 'state', 'runs', `${torn.id}.json`);
      await writeFile(file, (await readFile(file, 'utf8')).slice(0, 50));
      const lines: string[] = [];
      const logger = createLogger({ level: 'warn', destination: new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }) });
      const runner = new PipelineRunner({
        store, executor: new LocalExecutor(), materializer: { materialize: async () => {} }, workspaceDir: path.join(scratch, 'workspaces'), logger,
      });
      const recovered = await runner.recoverInterruptedRuns();
      expect(recovered.map((run) => run.id)).to.deep.equal([whole.id]);
      const warning = lines.map((line) => JSON.parse(line) as { msg: string; file?: string }).find((line) => line.msg === 'run record is corrupt; move it away');
      expect(warning?.file).to.equal(file);
      expect((await store.corruptRuns()).map((run) => run.id), 'still listed').to.deep.equal([torn.id]);
    } finally {
      await store.close();
    }
  });

  it('records a long backlog as one skipped run per commit up to the limit, then one summary run', async () => {
    const store = await FileStore.open({ stateDir: path.join(scratch, 'state') });
    try {
      const runner = stepRunner(store, scratch);
      const [c1, c2, c3, head] = ['1', '2', '3', '4'].map((digit) => digit.repeat(40));
      await runner.trigger({ watch: { key: 'repo^main', repo: 'repo' }, branch: 'main', commit: head!, skipped: [c2!, c3!], skippedOmitted: { count: 250, newest: c1! } }, new AbortController().signal);
      const runs = (await store.listRuns({ watch: 'repo^main' })).reverse();
      // Records written within the same millisecond have no defined order in the listing.
      expect(runs.map((run) => [run.commit, run.phase])).to.have.deep.members([[c2, 'skipped'], [c3, 'skipped'], [c1, 'skipped'], [head, 'succeeded']]);
      expect(runs.find((run) => run.commit === c1)!.message).to.match(/^250 older commit\(s\) up to 111111111111 were not built/);
    } finally {
      await store.close();
    }
  });

  it('records each skipped commit once, also when a killed keelson had written part of the backlog before its run', async () => {
    const store = await FileStore.open({ stateDir: path.join(scratch, 'state') });
    try {
      const runner = stepRunner(store, scratch);
      const [c1, c2, c3, head] = ['1', '2', '3', '4'].map((digit) => digit.repeat(40));
      // What the killed process got to write: the summary and one of the listed commits, no run for the head.
      const base = { kind: 'build' as const, watch: 'repo^main', repo: 'repo', branch: 'main', phase: 'skipped' as const, reason: RunReason.Coalesced };
      await store.createRun({ ...base, id: newRunId(), commit: c1!, message: '250 older commit(s) up to 111111111111 were not built either' });
      await store.createRun({ ...base, id: newRunId(), commit: c2!, message: `newer commit ${head!.slice(0, 12)} was built instead` });
      // The next start sees the same backlog.
      await runner.trigger({ watch: { key: 'repo^main', repo: 'repo' }, branch: 'main', commit: head!, skipped: [c2!, c3!], skippedOmitted: { count: 250, newest: c1! } }, new AbortController().signal);
      const runs = await store.listRuns({ watch: 'repo^main' });
      expect(runs.map((run) => [run.commit, run.phase])).to.have.deep.members([[c1, 'skipped'], [c2, 'skipped'], [c3, 'skipped'], [head, 'succeeded']]);
      expect(runs.find((run) => run.commit === head)!.skippedCommits).to.deep.equal([c2, c3]);
    } finally {
      await store.close();
    }
  });

  it('records commits that landed between polls as skipped, also those no poll saw', async () => {
    const repo = await makeRepo({ branch: 'main' });
    const stateDir = path.join(scratch, 'state');
    const started = path.join(scratch, 'started');
    const first = await commitFile(repo, 'a.txt', 'one');
    const child: ChildProcess = spawn(process.execPath, [...CLI_ENTRY, 'watch', `${repo}^main`, '--schedule', '@every 2s',
      '--step', `echo "$KEELSON_COMMIT" >> ${started}; sleep 3`, '--state-dir', stateDir], {
      cwd: REPO_ROOT, env: { ...process.env, KEELSON_LOG_LEVEL: 'silent' }, stdio: 'ignore',
    });
    const later: string[] = [];
    const phasesOf = async (): Promise<Map<string, string[]>> => {
      const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
      const byCommit = new Map<string, string[]>();
      for (const run of (JSON.parse(listed.stdout) as Array<{ commit: string; phase: string }>).reverse()) {
        byCommit.set(run.commit, [...(byCommit.get(run.commit) ?? []), run.phase]);
      }
      return byCommit;
    };
    let phases: Map<string, string[]>;
    try {
      await until(async () => (await readFile(started, 'utf8').catch(() => '')).includes(first), 'the first run to start');
      for (const text of ['two', 'three', 'four']) {
        later.push(await commitFile(repo, 'a.txt', text));
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      phases = await until(async () => {
        const now = await phasesOf();
        return now.get(later[2]!)?.includes('succeeded') ? now : undefined;
      }, 'the newest commit to be built', 60_000);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    expect((await readFile(started, 'utf8')).split('\n').filter(Boolean), 'built: the first and the newest').to.deep.equal([first, later[2]]);
    expect([first, ...later].map((commit) => phases.get(commit))).to.deep.equal([['succeeded'], ['skipped'], ['skipped'], ['succeeded']]);
  });
});
