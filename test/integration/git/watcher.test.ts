import { expect } from 'chai';
import { Writable } from 'node:stream';
import { Duration } from '../../../src/domain/index.js';
import {
  GitWatcher, parseWatchSpec, watchStateKey, type GitWatcherOptions, type PipelineTrigger, type TriggerEvent,
  type WatchSpec,
} from '../../../src/git/index.js';
import { createLogger } from '../../../src/log/index.js';
import { FileStore } from '../../../src/store/index.js';
import { cleanupRepos, cloneRepo, commitFile, fileUrl, makeRepo, tempDir } from '../../support/git.js';

/** Records every trigger; while `hold` is on, runs stay going until release() (or abort). */
class RecordingTrigger implements PipelineTrigger {
  readonly events: TriggerEvent[] = [];
  readonly aborted: string[] = [];
  hold = false;
  ok = true;
  private readonly gates: Array<() => void> = [];

  async trigger(event: TriggerEvent, signal: AbortSignal): Promise<{ ok: boolean }> {
    this.events.push(event);
    if (this.hold) {
      await new Promise<void>((resolve) => {
        this.gates.push(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    if (signal.aborted) this.aborted.push(event.commit);
    return { ok: this.ok };
  }

  release(): void {
    for (const open of this.gates.splice(0)) open();
  }

  commits(): string[] {
    return this.events.map((e) => e.commit);
  }
}

/** Log lines as parsed JSON, to check what one failure writes. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger({ destination, pretty: false, level: 'info' }), lines, raw };
}

describe('GitWatcher against real repositories', function () {
  this.timeout(60_000);
  let store: FileStore;
  const watchers: GitWatcher[] = [];

  function watcher(options: Partial<GitWatcherOptions> & Pick<GitWatcherOptions, 'watches' | 'trigger'>): GitWatcher {
    const made = new GitWatcher({ state: store, jitter: 0, ...options });
    watchers.push(made);
    return made;
  }

  beforeEach(async () => {
    store = await FileStore.open({ stateDir: await tempDir('keelson-state-') });
  });
  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.stop()));
    await store.close();
  });
  after(cleanupRepos);

  it('triggers a new commit once and records it as done only when its run ends', async () => {
    const origin = await makeRepo({ bare: true, branch: 'trunk' });
    const first = await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(fileUrl(origin));
    const trigger = new RecordingTrigger();
    trigger.hold = true;
    const w = watcher({ watches: [spec], trigger });

    await w.pollOnce();
    expect(trigger.events).to.deep.equal([{ watch: spec, commit: first, branch: 'trunk', skipped: [] }]);
    expect(await store.getState(watchStateKey(spec))).to.equal(undefined);
    expect(w.status()[0]).to.include({ running: first, lastDone: undefined });

    trigger.release();
    await w.idle();
    expect(await store.getState(watchStateKey(spec))).to.include({ commit: first, branch: 'trunk', ok: true });
    await w.pollOnce();
    await w.pollOnce();
    expect(trigger.commits()).to.deep.equal([first]);
  });

  it('coalesces commits that land during a run: builds the newest, passes the others as skipped', async () => {
    const origin = await makeRepo({ bare: true });
    const c1 = await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(`${fileUrl(origin)}^main`);
    const trigger = new RecordingTrigger();
    trigger.hold = true;
    const w = watcher({ watches: [spec], trigger });

    await w.pollOnce();
    const landed: string[] = [];
    for (const n of [2, 3, 4]) {
      landed.push(await commitFile(origin, 'v', String(n)));
      await w.pollOnce();
      await w.pollOnce(); // seeing the same commit twice changes nothing
    }
    expect(trigger.commits()).to.deep.equal([c1]);
    expect(w.status()[0]).to.deep.include({ running: c1, pending: landed[2], skipped: [landed[0], landed[1]] });

    trigger.hold = false;
    trigger.release();
    await w.idle();
    expect(trigger.events).to.have.length(2);
    expect(trigger.events[1]).to.deep.equal({ watch: spec, commit: landed[2], branch: 'main', skipped: [landed[0], landed[1]] });
    expect(await store.getState(watchStateKey(spec))).to.include({ commit: landed[2] });
  });

  it('does not retry a failed run on every poll; only a new commit triggers again', async () => {
    const origin = await makeRepo({ bare: true });
    const broken = await commitFile(origin, 'v', 'broken');
    const trigger = new RecordingTrigger();
    trigger.ok = false;
    const spec = parseWatchSpec(fileUrl(origin));
    const w = watcher({ watches: [spec], trigger });

    expect(await w.runOnce()).to.equal(false);
    await w.pollOnce();
    await w.idle();
    expect(trigger.commits()).to.deep.equal([broken]);
    expect(await store.getState(watchStateKey(spec))).to.include({ commit: broken, ok: false });

    trigger.ok = true;
    const fixed = await commitFile(origin, 'v', 'fixed');
    expect(await w.runOnce()).to.equal(true);
    expect(trigger.commits()).to.deep.equal([broken, fixed]);
  });

  it('a run of one branch blocks neither the polls nor the runs of another branch of the same repository', async () => {
    const origin = await makeRepo({ bare: true });
    const main1 = await commitFile(origin, 'v', 'main 1');
    const dev1 = await commitFile(origin, 'v', 'dev 1', 'dev', { branch: 'dev' });
    const main = parseWatchSpec(`${fileUrl(origin)}^main`);
    const dev = parseWatchSpec(`${fileUrl(origin)}^dev`);
    const trigger = new RecordingTrigger();
    trigger.hold = true;
    const w = watcher({ watches: [main, dev], trigger });

    await w.pollOnce(main.key);
    expect(trigger.commits()).to.deep.equal([main1]);
    await w.pollOnce(dev.key);
    expect(trigger.commits()).to.deep.equal([main1, dev1]);

    const dev2 = await commitFile(origin, 'v', 'dev 2', 'dev', { branch: 'dev' });
    await w.pollOnce();
    const byKey = new Map(w.status().map((s) => [s.key, s]));
    expect(byKey.get(dev.key)).to.include({ running: dev1, pending: dev2 });
    expect(byKey.get(main.key)).to.include({ running: main1, pending: undefined });

    trigger.hold = false;
    trigger.release();
    await w.idle();
    expect(trigger.commits()).to.deep.equal([main1, dev1, dev2]);
    expect(await store.getState(watchStateKey(main))).to.include({ commit: main1 });
    expect(await store.getState(watchStateKey(dev))).to.include({ commit: dev2 });
  });

  it('sees commits of a local clone that were never pushed', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'v', '1');
    const clone = await cloneRepo(fileUrl(origin));
    const unpushed = await commitFile(clone, 'v', 'local');
    const trigger = new RecordingTrigger();
    const spec = parseWatchSpec(`${clone}^main`);
    expect(await watcher({ watches: [spec], trigger }).runOnce()).to.equal(true);
    expect(trigger.events).to.deep.equal([{ watch: spec, commit: unpushed, branch: 'main', skipped: [] }]);
  });

  it('picks up after a restart from the persisted state', async () => {
    const origin = await makeRepo({ bare: true });
    const built = await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(fileUrl(origin));
    const before = new RecordingTrigger();
    const first = watcher({ watches: [spec], trigger: before });
    expect(await first.runOnce()).to.equal(true);
    await first.stop();
    const stateDir = store.stateDir;
    await store.close();

    store = await FileStore.open({ stateDir });
    const after = new RecordingTrigger();
    const second = watcher({ watches: [parseWatchSpec(fileUrl(origin))], trigger: after });
    expect(await second.runOnce()).to.equal(true);
    expect(after.events).to.deep.equal([]);
    expect(second.status()[0]?.lastDone).to.equal(built);

    const next = await commitFile(origin, 'v', '2');
    expect(await second.runOnce()).to.equal(true);
    expect(after.commits()).to.deep.equal([next]);
    expect(before.commits()).to.deep.equal([built]);
  });

  it('stop() aborts a running trigger and leaves its commit to be built after the restart', async () => {
    const origin = await makeRepo({ bare: true });
    const commit = await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(fileUrl(origin));
    const trigger = new RecordingTrigger();
    trigger.hold = true;
    const w = watcher({ watches: [spec], trigger });
    await w.pollOnce();
    await commitFile(origin, 'v', '2');
    await w.pollOnce(); // a pending commit is not started once stopping
    await w.stop();
    expect(trigger.aborted).to.deep.equal([commit]);
    expect(trigger.events).to.have.length(1);
    expect(await store.getState(watchStateKey(spec))).to.equal(undefined);

    const again = new RecordingTrigger();
    expect(await watcher({ watches: [spec], trigger: again }).runOnce()).to.equal(true);
    expect(again.events).to.have.length(1);
  });

  it('an unreachable remote or a missing branch gives one log line per failed poll, a growing backoff and no run', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'v', '1');
    const unreachable = parseWatchSpec('http://bot:pw-for-backoff-test@127.0.0.1:1/org/repo.git^main');
    const missing = parseWatchSpec(`${fileUrl(origin)}^no-such-branch`);
    const trigger = new RecordingTrigger();
    const { logger, lines, raw } = capturingLogger();
    const w = watcher({ watches: [unreachable, missing], trigger, logger, schedule: '@every 30s', maxBackoff: Duration.parse('5m') });

    const backoffs: number[][] = [];
    for (let i = 0; i < 4; i += 1) {
      await w.pollOnce();
      backoffs.push(w.status().map((s) => s.backoffMs));
    }
    expect(await w.runOnce()).to.equal(false);
    expect(trigger.events).to.deep.equal([]);
    expect(backoffs).to.deep.equal([[60_000, 60_000], [120_000, 120_000], [240_000, 240_000], [300_000, 300_000]]);

    const failures = lines.filter((l) => l.msg === 'git poll failed');
    expect(failures).to.have.length(10);
    expect(failures.filter((l) => l.code === 'KEELSON_GIT_UNREACHABLE')).to.have.length(5);
    expect(failures.filter((l) => l.code === 'KEELSON_GIT_BRANCH_NOT_FOUND')).to.have.length(5);
    expect(String(failures.find((l) => l.code === 'KEELSON_GIT_BRANCH_NOT_FOUND')?.reason)).to.match(/branch "no-such-branch" does not exist/);
    expect(failures.map((l) => l.watch)).to.include.members([unreachable.display, missing.display]);
    expect(raw.join('\n')).to.not.include('pw-for-backoff-test');
    const [bad] = w.status();
    expect(bad).to.include({ failures: 5 });
    expect(bad?.lastError).to.match(/cannot reach the repository/);
  });

  it('recovers from failures once the branch appears', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(`${fileUrl(origin)}^later`);
    const trigger = new RecordingTrigger();
    const w = watcher({ watches: [spec], trigger });
    expect(await w.runOnce()).to.equal(false);
    expect(w.status()[0]?.failures).to.equal(1);
    const appeared = await commitFile(origin, 'v', 'later', 'later', { branch: 'later' });
    expect(await w.runOnce()).to.equal(true);
    expect(w.status()[0]).to.include({ failures: 0, backoffMs: 0, lastDone: appeared });
  });

  it('refuses the same watch twice', async () => {
    const origin = await makeRepo({ bare: true });
    const spec: WatchSpec = parseWatchSpec(`${fileUrl(origin)}^main`);
    expect(() => new GitWatcher({ watches: [spec, parseWatchSpec(`${fileUrl(origin)}/^main`)], trigger: new RecordingTrigger(), state: store }))
      .to.throw(/is watched twice/);
  });

  it('polls on its schedule once started', async () => {
    const origin = await makeRepo({ bare: true });
    const first = await commitFile(origin, 'v', '1');
    const trigger = new RecordingTrigger();
    const w = watcher({ watches: [parseWatchSpec(fileUrl(origin))], trigger, schedule: '@every 1s' });
    w.start();
    await until(() => trigger.events.length === 1);
    const second = await commitFile(origin, 'v', '2');
    await until(() => trigger.events.length === 2);
    expect(trigger.commits()).to.deep.equal([first, second]);
  });

  it("polls a watch that names its own schedule on that one, the others on the watcher's", async () => {
    const [fast, slow] = [await makeRepo({ bare: true }), await makeRepo({ bare: true })];
    await commitFile(fast, 'v', '1');
    await commitFile(slow, 'v', '1');
    const trigger = new RecordingTrigger();
    const fastSpec = { ...parseWatchSpec(fileUrl(fast)), schedule: '@every 1s' };
    const slowSpec = parseWatchSpec(fileUrl(slow));
    const w = watcher({ watches: [fastSpec, slowSpec], trigger, schedule: '@every 1h' });
    w.start();
    await until(() => trigger.events.length === 2);
    expect(w.status().map((s) => s.schedule)).to.deep.equal(['@every 1s', '@every 1h']);
    const second = await commitFile(fast, 'v', '2');
    await commitFile(slow, 'v', '2');
    await until(() => trigger.commits().includes(second));
    // The hourly one is not polled again within the test: its second commit is not seen.
    expect(trigger.events.filter((e) => e.watch.key === slowSpec.key)).to.have.length(1);
  });
});

/** Waits for a condition with a generous bound: correctness, not speed, is what is checked. */
async function until(condition: () => boolean, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
