import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { FileStore } from '../../../src/store/index.js';
import { TraceBook, type RolloutTrace } from '../../../src/trace/index.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function rollout(i: number): RolloutTrace {
  return { workload: `ns/deployment/w${i}`, container: 'app', from: 'reg/app:1.0.0', image: 'reg/app:1.1.0', digest: DIGEST, at: new Date(0).toISOString() };
}

describe('TraceBook on a file store', () => {
  let stateDir: string;
  let store: FileStore;
  let writes: number;

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'keelson-trace-book-'));
    store = await FileStore.open({ stateDir });
    writes = 0;
    const setState = store.setState.bind(store);
    store.setState = (key, value) => { writes += 1; return setState(key, value); };
  });
  afterEach(async () => {
    await store.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('keeps every rollout of a hundred recorded at once to one digest, in a few writes rather than one each', async () => {
    const book = new TraceBook(store);
    await Promise.all(Array.from({ length: 100 }, (_, i) => book.recordRollouts([rollout(i)])));
    const trace = await book.forDigest(DIGEST);
    expect(trace.rollouts.map((r) => r.workload).sort()).to.deep.equal(Array.from({ length: 100 }, (_, i) => `ns/deployment/w${i}`).sort());
    expect(writes).to.be.at.most(2);
  });

  it('resolves each recording only once it is written, also for the ones that joined a batch', async () => {
    const book = new TraceBook(store);
    const first = book.recordRollouts([rollout(1)]);
    const second = book.recordRollouts([rollout(2)]);
    await second;
    expect((await new TraceBook(store).forDigest(DIGEST)).rollouts.map((r) => r.workload)).to.include('ns/deployment/w2');
    await first;
    await book.recordCi(DIGEST, { workload: 'ns/deployment/w1', run: 'run-1', exitCode: 0, finishedAt: new Date(0).toISOString() });
    await book.recordCi(DIGEST, { workload: 'ns/deployment/w1', run: 'run-1', exitCode: 0, finishedAt: new Date(0).toISOString() });
    const trace = await book.forDigest(DIGEST);
    expect(trace.rollouts).to.have.length(2);
    expect(trace.ci).to.have.length(1);
  });
});
