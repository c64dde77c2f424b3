import { expect } from 'chai';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, type Store } from '../../../src/store/index.js';
import { describeStoreContract, newRun } from './contract.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'keelson-store-'));
}

describeStoreContract('FileStore', async () => {
  const dir = await tempDir();
  const opened: Store[] = [];
  return {
    async open() {
      const store = await FileStore.open({ stateDir: dir });
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('FileStore on disk', function () {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('describes itself as file:<absolute state dir>', async () => {
    const store = await FileStore.open({ stateDir: dir });
    expect(store.description).to.equal(`file:${dir}`);
  });

  it('ignores half-written temp files and removes those of dead processes on open', async () => {
    const store = await FileStore.open({ stateDir: dir });
    const run = await store.createRun(newRun());
    // What a writer killed mid-write leaves behind: a torn temp file next to the record.
    const deadPid = 2 ** 22 + 12345; // above pid_max on default kernels, so never alive
    await writeFile(join(dir, 'runs', `${run.id}.json.tmp-${deadPid}-abcd`), '{"id": "torn', 'utf8');
    await writeFile(join(dir, 'state', `k.json.tmp-${deadPid}-abcd`), '{"key":', 'utf8');
    expect((await store.listRuns()).map((r) => r.id)).to.deep.equal([run.id]);
    expect(await store.getRun(run.id)).to.deep.equal(run);

    await FileStore.open({ stateDir: dir });
    expect((await readdir(join(dir, 'runs'))).filter((n) => n.includes('.tmp-'))).to.deep.equal([]);
    expect(await readdir(join(dir, 'state'))).to.deep.equal([]);
  });

  it('skips a damaged record in lists but names it when read directly', async () => {
    const store = await FileStore.open({ stateDir: dir });
    const good = await store.createRun(newRun());
    const bad = newRun();
    await writeFile(join(dir, 'runs', `${bad.id}.json`), '{"id": "not a record"}', 'utf8');
    expect((await store.listRuns()).map((r) => r.id)).to.deep.equal([good.id]);
    const error = await store.getRun(bad.id).catch((e: unknown) => e);
    expect(error).to.have.property('code', 'KEELSON_STORE_CORRUPT');
    expect((error as Error).message).to.contain(`${bad.id}.json`);
  });

  it('refuses a state dir that is a file', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const error = await FileStore.open({ stateDir: file }).catch((e: unknown) => e);
    expect(error).to.have.property('code', 'KEELSON_STORE_CONFIG');
    expect(error).to.have.property('exitCode', 2);
  });

  it('breaks the transition lock of a process that died holding it', async () => {
    const store = await FileStore.open({ stateDir: dir, lockTimeoutMs: 60_000 });
    const run = await store.createRun(newRun());
    await writeFile(join(dir, 'locks', `${run.id}.lock`), `${2 ** 22 + 54321}:deadbeef`, 'utf8');
    const next = await store.transitionRun(run.id, 'running', 'Started', 'go');
    expect(next.phase).to.equal('running');
    expect(await readdir(join(dir, 'locks'))).to.deep.equal([]);
  });

  it('gives up on a lock held by a live process, with an error naming it', async () => {
    const store = await FileStore.open({ stateDir: dir, lockTimeoutMs: 50 });
    const run = await store.createRun(newRun());
    await writeFile(join(dir, 'locks', `${run.id}.lock`), `${process.pid}:other`, 'utf8');
    const error = await store.transitionRun(run.id, 'running', 'Started', 'go').catch((e: unknown) => e);
    expect(error).to.have.property('code', 'KEELSON_STORE_UNAVAILABLE');
    expect((error as Error).message).to.contain(`locked by process ${process.pid}`);
    expect((await store.getRun(run.id))!.phase).to.equal('queued');
  });
});
