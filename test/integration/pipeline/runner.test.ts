import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PipelineSpec } from '../../../src/config/index.js';
import { LocalExecutor } from '../../../src/executor/index.js';
import { GitWatcher, materializeCommit, parseWatchSpec, type WatchSpec } from '../../../src/git/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { runQueueLength } from '../../../src/metrics/index.js';
import { PipelineRunner } from '../../../src/pipeline/index.js';
import { FileStore, type RunRecord } from '../../../src/store/index.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { until } from '../../support/wait.js';

describe('pipeline runner with workers and supersession (real git, real file store)', function () {
  this.timeout(120_000);
  let scratch: string;
  let store: FileStore;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-runner-'));
    store = await FileStore.open({ stateDir: path.join(scratch, 'state') });
  });
  afterEach(async () => {
    await store.close();
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  function runner(steps: string[], workers: number): PipelineRunner {
    return new PipelineRunner({
      store,
      executor: new LocalExecutor(),
      materializer: {
        materialize: async (watch, commit, dest, signal) => {
          await materializeCommit(watch as WatchSpec, commit, dest, { cacheDir: path.join(scratch, 'mirrors'), signal });
        },
      },
      pipeline: PipelineSpec.parse({ steps }),
      workspaceDir: path.join(scratch, 'workspaces'),
      logger: silentLogger(),
      workers,
    });
  }

  async function runsOf(watch: string): Promise<RunRecord[]> {
    return store.listRuns({ watch });
  }

  it('cancels a running build when a newer commit lands, then builds the newer one', async () => {
    const repo = await makeRepo();
    const gate = path.join(scratch, 'gate');
    const first = await commitFile(repo, 'a.txt', 'one');
    // Every run waits for the gate file: the first one is still going when the second commit lands.
    const steps = [`while [ ! -e ${gate} ]; do sleep 0.1; done`];
    const spec = parseWatchSpec(`${repo}^main`);
    const watcher = new GitWatcher({ watches: [spec], trigger: runner(steps, 1), state: store, supersede: true });
    try {
      await watcher.pollOnce();
      await until(async () => (await runsOf(spec.key)).find((r) => r.phase === 'running'), 'the first run to start');
      const second = await commitFile(repo, 'a.txt', 'two');
      await watcher.pollOnce();
      await until(async () => (await runsOf(spec.key)).find((r) => r.commit === first && r.phase === 'cancelled'), 'the first run to be cancelled');
      await writeFile(gate, '');
      await watcher.idle();
      const runs = await runsOf(spec.key);
      expect(runs.map((r) => [r.commit, r.phase, r.reason])).to.deep.equal([
        [second, 'succeeded', 'StepsSucceeded'],
        [first, 'cancelled', 'Superseded'],
      ]);
    } finally {
      await writeFile(gate, '');
      await watcher.stop();
    }
  });

  it('queues runs beyond --workers and runs different watches in parallel when allowed', async () => {
    const repos = [await makeRepo(), await makeRepo()];
    for (const repo of repos) await commitFile(repo, 'a.txt', 'one');
    const specs = repos.map((repo) => parseWatchSpec(`${repo}^main`));
    const gate = path.join(scratch, 'gate');
    const steps = [`while [ ! -e ${gate} ]; do sleep 0.1; done`];

    for (const workers of [1, 2]) {
      await rm(gate, { force: true });
      // A new commit per round: a commit whose run finished is never run again.
      if (workers === 2) for (const repo of repos) await commitFile(repo, 'a.txt', 'two');
      const watcher = new GitWatcher({ watches: specs, trigger: runner(steps, workers), state: store });
      try {
        await watcher.pollOnce();
        const phases = await until(async () => {
          const latest = await Promise.all(specs.map(async (s) => (await runsOf(s.key))[0]?.phase));
          // Both runs are recorded (the second one `queued` while it waits for a worker).
          if (latest.includes(undefined)) return undefined;
          return latest.filter((p) => p === 'running').length === workers ? latest : undefined;
        }, `${workers} run(s) going`);
        // keelson_run_queue_length: the run waiting for the one worker, none with two.
        const queued = (await runQueueLength.get()).values[0]?.value;
        if (workers === 1) expect([...phases].sort()).to.deep.equal(['queued', 'running']);
        else expect(phases).to.deep.equal(['running', 'running']);
        expect(queued).to.equal(workers === 1 ? 1 : 0);
        await writeFile(gate, '');
        await watcher.idle();
        expect((await runQueueLength.get()).values[0]?.value).to.equal(0);
      } finally {
        await writeFile(gate, '');
        await watcher.stop();
      }
    }
    for (const spec of specs) {
      expect((await runsOf(spec.key)).map((r) => r.phase)).to.deep.equal(['succeeded', 'succeeded']);
    }
  });
});
