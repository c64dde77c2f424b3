import { expect } from 'chai';
import { parseRunId, type RunId } from '../../../src/domain/index.js';
import { registerSecret } from '../../../src/log/index.js';
import {
  RunReason, findUnfinishedRuns, followLog, type NewRun, type Store,
} from '../../../src/store/index.js';

/** One backing store (a temp dir, a Redis key prefix); every open() is a new Store on it. */
export interface StoreFixture {
  open(): Promise<Store>;
  /** Closes what open() returned and removes the backing data. */
  dispose(): Promise<void>;
}

let counter = 0;
/** Ids that sort in creation order, as real run ids do. */
export function testRunId(): RunId {
  counter++;
  return parseRunId(`20260101-000000-${String(counter).padStart(6, '0')}`);
}

export function newRun(overrides: Partial<NewRun> = {}): NewRun {
  return {
    id: testRunId(),
    kind: 'build',
    watch: 'https://example.com/team/app.git^main',
    repo: 'https://example.com/team/app.git',
    branch: 'main',
    commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    phase: 'queued',
    reason: RunReason.Queued,
    message: 'waiting for a worker',
    ...overrides,
  };
}

/**
 * The behaviour every Store must have. Run once per implementation, so that the file store and
 * Redis cannot drift apart.
 */
export function describeStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, function () {
    this.timeout(30_000);
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await makeStore();
      store = await fixture.open();
    });
    afterEach(async () => {
      await fixture.dispose();
    });

    describe('runs', () => {
      it('creates a run with its first phase and reads it back, also from a new instance', async () => {
        const run = newRun();
        const created = await store.createRun(run);
        expect(created).to.include({ id: run.id, phase: 'queued', reason: 'Queued', commit: run.commit });
        expect(created.phases).to.have.length(1);
        expect(created.phases[0]).to.include({ phase: 'queued', reason: 'Queued', message: 'waiting for a worker' });
        expect(created.phases[0]!.at).to.equal(created.createdAt);
        expect(created.startedAt).to.equal(undefined);
        expect(await store.getRun(run.id)).to.deep.equal(created);
        const other = await fixture.open();
        expect(await other.getRun(run.id)).to.deep.equal(created);
      });

      it('returns undefined for an unknown run', async () => {
        expect(await store.getRun(testRunId())).to.equal(undefined);
      });

      it('refuses a second run with the same id and keeps the first', async () => {
        const run = newRun();
        const first = await store.createRun(run);
        const error = await store.createRun({ ...run, commit: 'ffff' }).catch((e: unknown) => e);
        expect(error).to.have.property('code', 'KEELSON_RUN_EXISTS');
        expect(await store.getRun(run.id)).to.deep.equal(first);
      });

      it('records phases with times, startedAt on running and finishedAt on a terminal phase', async () => {
        const run = newRun();
        await store.createRun(run);
        const running = await store.transitionRun(run.id, 'running', RunReason.Started, 'building');
        expect(running.startedAt).to.be.a('string');
        expect(running.finishedAt).to.equal(undefined);
        const done = await store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'all steps passed', {
          exitCode: 0,
          image: { ref: '127.0.0.1:5000/team/app:main', digest: `sha256:${'ab'.repeat(32)}`, pushed: true },
        });
        expect(done).to.include({ phase: 'succeeded', reason: 'StepsSucceeded', message: 'all steps passed', exitCode: 0 });
        expect(done.startedAt).to.equal(running.startedAt);
        expect(done.finishedAt).to.be.a('string');
        expect(Date.parse(done.finishedAt!)).to.be.at.least(Date.parse(done.startedAt!));
        expect(done.phases.map((p) => p.phase)).to.deep.equal(['queued', 'running', 'succeeded']);
        expect(done.image).to.deep.equal({ ref: '127.0.0.1:5000/team/app:main', digest: `sha256:${'ab'.repeat(32)}`, pushed: true });
        expect(await store.getRun(run.id)).to.deep.equal(done);
      });

      it('sets startedAt when a run is created running, and finishedAt when created terminal', async () => {
        const running = await store.createRun(newRun({ phase: 'running', reason: RunReason.Started }));
        expect(running.startedAt).to.equal(running.createdAt);
        const skipped = await store.createRun(newRun({ phase: 'skipped', reason: RunReason.Coalesced }));
        expect(skipped.finishedAt).to.equal(skipped.createdAt);
        expect(skipped.startedAt).to.equal(undefined);
      });

      it('refuses to leave a terminal phase and leaves the record unchanged', async () => {
        const run = newRun();
        await store.createRun(run);
        const failed = await store.transitionRun(run.id, 'failed', RunReason.BuildFailed, 'exit 1', { exitCode: 1 });
        const error = await store.transitionRun(run.id, 'running', RunReason.Started, 'again').catch((e: unknown) => e);
        expect(error).to.have.property('code', 'KEELSON_RUN_FINISHED');
        expect(error).to.have.property('exitCode', 1);
        expect((error as Error).message).to.contain(run.id).and.contain('failed');
        expect(await store.getRun(run.id)).to.deep.equal(failed);
      });

      it('lets exactly one of two racing writers finish a run', async () => {
        const run = newRun({ phase: 'running', reason: RunReason.Started });
        await store.createRun(run);
        const other = await fixture.open();
        const results = await Promise.allSettled([
          store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'a'),
          other.transitionRun(run.id, 'cancelled', RunReason.Superseded, 'b'),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won).to.have.length(1);
        expect(lost).to.have.length(1);
        expect(lost[0]!.reason).to.have.property('code', 'KEELSON_RUN_FINISHED');
        const final = await store.getRun(run.id);
        expect(final!.phases).to.have.length(2);
        expect(final).to.deep.equal((won[0] as PromiseFulfilledResult<unknown>).value);
      });

      it('refuses to transition an unknown run', async () => {
        const error = await store.transitionRun(testRunId(), 'running', RunReason.Started, 'x').catch((e: unknown) => e);
        expect(error).to.have.property('code', 'KEELSON_RUN_NOT_FOUND');
        expect((error as Error).message).to.contain(store.description);
      });

      it('lists newest first, with a limit, filtered by watch and by phase', async () => {
        const a = newRun({ watch: 'repo-a^main' });
        const b = newRun({ watch: 'repo-b^main' });
        const c = newRun({ watch: 'repo-a^main' });
        for (const run of [a, b, c]) await store.createRun(run);
        await store.transitionRun(a.id, 'running', RunReason.Started, 'go');
        expect((await store.listRuns()).map((r) => r.id)).to.deep.equal([c.id, b.id, a.id]);
        expect((await store.listRuns({ limit: 2 })).map((r) => r.id)).to.deep.equal([c.id, b.id]);
        expect((await store.listRuns({ watch: 'repo-a^main' })).map((r) => r.id)).to.deep.equal([c.id, a.id]);
        expect((await store.listRuns({ phase: 'queued' })).map((r) => r.id)).to.deep.equal([c.id, b.id]);
        expect((await store.listRuns({ phase: 'running' })).map((r) => r.id)).to.deep.equal([a.id]);
        expect((await store.listRuns({ watch: 'repo-a^main', phase: 'queued' })).map((r) => r.id)).to.deep.equal([c.id]);
        expect(await store.listRuns({ watch: 'nothing^here' })).to.deep.equal([]);
        await store.transitionRun(a.id, 'succeeded', RunReason.StepsSucceeded, 'ok');
        expect(await store.listRuns({ phase: 'running' })).to.deep.equal([]);
        expect((await store.listRuns({ phase: 'succeeded' })).map((r) => r.id)).to.deep.equal([a.id]);
      });

      it('lists at most 100 runs by default', async () => {
        const ids: RunId[] = [];
        for (let i = 0; i < 103; i++) ids.push((await store.createRun(newRun())).id);
        const listed = await store.listRuns();
        expect(listed).to.have.length(100);
        expect(listed[0]!.id).to.equal(ids[102]);
        expect(await store.listRuns({ limit: 1000 })).to.have.length(103);
      });

      it('finds unfinished runs (queued and running) and not finished ones', async () => {
        const queued = newRun();
        const running = newRun({ phase: 'running', reason: RunReason.Started });
        const done = newRun({ phase: 'running', reason: RunReason.Started });
        for (const run of [queued, running, done]) await store.createRun(run);
        await store.transitionRun(done.id, 'failed', RunReason.StepFailed, 'boom');
        expect((await findUnfinishedRuns(store)).map((r) => r.id)).to.deep.equal([running.id, queued.id]);
      });

      it('redacts registered secrets from run messages', async () => {
        registerSecret('contract-secret-Zq81');
        const run = newRun({ message: 'token contract-secret-Zq81 used' });
        await store.createRun(run);
        await store.transitionRun(run.id, 'failed', RunReason.PushFailed, 'push with contract-secret-Zq81 denied');
        const text = JSON.stringify(await store.getRun(run.id));
        expect(text).not.to.contain('contract-secret-Zq81');
        expect(text).to.contain('[REDACTED]');
      });
    });

    describe('logs', () => {
      it('reads an empty log of a new run at offset 0', async () => {
        const run = await store.createRun(newRun());
        expect(await store.readLog(run.id)).to.deep.equal({ text: '', offset: 0 });
      });

      it('appends and reads from byte offsets, multi-byte UTF-8 included', async () => {
        const run = await store.createRun(newRun());
        await store.appendLog(run.id, 'step 1: ok\n');
        await store.appendLog(run.id, 'héllo ✓ 😀\n');
        const all = await store.readLog(run.id);
        expect(all.text).to.equal('step 1: ok\nhéllo ✓ 😀\n');
        expect(all.offset).to.equal(Buffer.byteLength(all.text, 'utf8'));
        const tail = await store.readLog(run.id, Buffer.byteLength('step 1: ok\n'));
        expect(tail.text).to.equal('héllo ✓ 😀\n');
        expect(tail.offset).to.equal(all.offset);
        // A line end: the end of a log that could begin a registered secret (other tests in this
        // process register some) is held back until more text shows whether it is one.
        await store.appendLog(run.id, 'ünïcode end\n');
        expect(await store.readLog(run.id, all.offset)).to.deep.equal({
          text: 'ünïcode end\n', offset: all.offset + Buffer.byteLength('ünïcode end\n'),
        });
        expect(await store.readLog(run.id, 10_000)).to.deep.equal({ text: '', offset: 10_000 });
      });

      it('keeps the order of concurrent appends', async () => {
        const run = await store.createRun(newRun());
        const lines = Array.from({ length: 60 }, (_, i) => `line ${i} ✓\n`);
        await Promise.all(lines.map((line) => store.appendLog(run.id, line)));
        expect((await store.readLog(run.id)).text).to.equal(lines.join(''));
      });

      it('redacts registered secrets before storing', async () => {
        registerSecret('log-secret-Hx92kq');
        const run = await store.createRun(newRun());
        await store.appendLog(run.id, 'login with log-secret-Hx92kq\nfetch https://bob:pw-in-url@git.example.com/x.git\n');
        const { text } = await store.readLog(run.id);
        expect(text).not.to.contain('log-secret-Hx92kq');
        expect(text).not.to.contain('pw-in-url');
        expect(text).to.contain('login with [REDACTED]');
      });

      it('redacts a secret split across appends, and its base64, base64url and URL-encoded forms', async () => {
        const secret = 'split-Secret/+?&=9Q';
        registerSecret(secret);
        const run = await store.createRun(newRun({ phase: 'running', reason: RunReason.Started, message: 'running' }));
        const encoded = [
          secret,
          Buffer.from(secret).toString('base64'),
          Buffer.from(`Bearer ${secret}`).toString('base64'),
          Buffer.from(`x:${secret}`).toString('base64url'),
          encodeURIComponent(secret),
        ];
        // Every form cut in two at every position, one append per half (as 64 KiB reads cut output).
        for (const form of encoded) {
          for (let cut = 1; cut < form.length; cut++) {
            await store.appendLog(run.id, `<${form.slice(0, cut)}`);
            await store.appendLog(run.id, `${form.slice(cut)}>\n`);
          }
        }
        // The end of the log looks like the start of the secret: held back, then written when the run ends.
        await store.appendLog(run.id, `tail ${secret.slice(0, 8)}`);
        await store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'done');
        const { text } = await store.readLog(run.id);
        for (const form of encoded) expect(text).not.to.contain(form);
        expect(text).not.to.contain('Secret/+');
        expect(text.match(/\[REDACTED\]/g)?.length).to.be.greaterThan(encoded.length * 10);
        expect(text.endsWith(`tail ${secret.slice(0, 8)}`)).to.equal(true);
      });

      it('refuses logs of an unknown run', async () => {
        const id = testRunId();
        expect(await store.appendLog(id, 'x').catch((e: unknown) => e)).to.have.property('code', 'KEELSON_RUN_NOT_FOUND');
        expect(await store.readLog(id).catch((e: unknown) => e)).to.have.property('code', 'KEELSON_RUN_NOT_FOUND');
      });

      it('follows a log until the run finishes and the log is drained', async () => {
        const run = await store.createRun(newRun({ phase: 'running', reason: RunReason.Started }));
        await store.appendLog(run.id, 'first\n');
        const seen: string[] = [];
        const following = (async () => {
          for await (const chunk of followLog(store, run.id, { pollInterval: 10 })) {
            seen.push(chunk);
            if (chunk.includes('first')) {
              await store.appendLog(run.id, 'second ✓\n');
              await store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'ok');
              await store.appendLog(run.id, 'after the end\n');
            }
          }
        })();
        await following;
        expect(seen.join('')).to.equal('first\nsecond ✓\nafter the end\n');
      });

      it('stops following when aborted', async () => {
        const run = await store.createRun(newRun({ phase: 'running', reason: RunReason.Started }));
        const controller = new AbortController();
        await store.appendLog(run.id, 'x\n');
        const seen: string[] = [];
        for await (const chunk of followLog(store, run.id, { pollInterval: 10, signal: controller.signal })) {
          seen.push(chunk);
          controller.abort();
        }
        expect(seen).to.deep.equal(['x\n']);
      });
    });

    describe('state', () => {
      it('gets, sets, overwrites and deletes JSON values', async () => {
        expect(await store.getState('watch:repo^main')).to.equal(undefined);
        await store.setState('watch:repo^main', { commit: 'abc', at: 1 });
        expect(await store.getState('watch:repo^main')).to.deep.equal({ commit: 'abc', at: 1 });
        await store.setState('watch:repo^main', { commit: 'def', list: [1, 'two', null] });
        const other = await fixture.open();
        expect(await other.getState('watch:repo^main')).to.deep.equal({ commit: 'def', list: [1, 'two', null] });
        await store.deleteState('watch:repo^main');
        expect(await store.getState('watch:repo^main')).to.equal(undefined);
        await store.deleteState('never:set');
      });

      it('keeps keys with odd characters apart', async () => {
        const keys = [
          'watch:https://example.com/org/repo.git^main', 'watch:https://example.com/org/repo.git^Main',
          '../../etc/passwd', 'a/b', 'a%2Fb', 'ünï ✓', 'x'.repeat(400), `${'x'.repeat(399)}y`, '.',
        ];
        for (const [i, key] of keys.entries()) await store.setState(key, i);
        for (const [i, key] of keys.entries()) expect(await store.getState(key), key).to.equal(i);
      });

      it('stores strings, numbers and booleans as they are', async () => {
        await store.setState('s', 'text ✓');
        await store.setState('n', 0);
        await store.setState('b', false);
        expect([await store.getState('s'), await store.getState('n'), await store.getState('b')]).to.deep.equal(['text ✓', 0, false]);
      });
    });
  });
}
