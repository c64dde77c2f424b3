import { expect } from 'chai';
import { EventQueue } from '../../../src/rollout/event-queue.js';
import { silentLogger, type Logger } from '../../../src/log/index.js';

/** A logger that keeps its warn lines. */
function recordingLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const base = silentLogger();
  const logger = Object.assign(Object.create(base) as Logger, { warn: (fields: Record<string, unknown>) => { warnings.push(fields); } });
  return { logger, warnings };
}

describe('EventQueue', () => {
  it('returns at once and sends every queued event, at most `concurrency` at a time', async () => {
    const queue = new EventQueue(silentLogger(), { concurrency: 2 });
    let inFlight = 0;
    let most = 0;
    const sent: number[] = [];
    for (let i = 0; i < 6; i++) {
      queue.add({ workload: `ns/deployment/w${i}`, reason: 'ImageUpdated' }, async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight -= 1;
        sent.push(i);
        return true;
      });
    }
    expect(queue.size).to.equal(6);
    await queue.drain();
    expect(sent.sort()).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(most).to.equal(2);
    expect(queue.size).to.equal(0);
  });

  it('drops what does not fit, counts and logs it; refused and failed sends are counted and logged too', async () => {
    const { logger, warnings } = recordingLogger();
    const lost: string[] = [];
    const queue = new EventQueue(logger, { concurrency: 1, capacity: 2, logIntervalMs: 0, onLost: (reason) => lost.push(reason) });
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    queue.add({ workload: 'ns/deployment/a', reason: 'ImageUpdated' }, async () => { await held; return true; });
    queue.add({ workload: 'ns/deployment/b', reason: 'ImageUpdated' }, async () => false);
    queue.add({ workload: 'ns/deployment/c', reason: 'ImageUpdated' }, async () => true); // over capacity
    expect(lost).to.deep.equal(['queue_full']);
    expect(warnings[0]).to.include({ workload: 'ns/deployment/c', eventReason: 'ImageUpdated', droppedQueueFull: 1 });
    release();
    await queue.drain();
    queue.add({ workload: 'ns/deployment/d', reason: 'ApprovalRequested' }, () => Promise.reject(new Error('503: unavailable')));
    await queue.drain();
    expect(lost).to.deep.equal(['queue_full', 'failed', 'failed']);
    expect(warnings.at(-1)).to.include({ workload: 'ns/deployment/d', err: '503: unavailable' });
  });

  it('holds events back while the patches of a burst run, and at most maxYieldMs', async () => {
    let quiet!: () => void;
    const patchesDone = new Promise<void>((resolve) => { quiet = resolve; });
    const queue = new EventQueue(silentLogger(), { quiet: () => patchesDone });
    const sent: string[] = [];
    queue.add({ workload: 'ns/deployment/a', reason: 'ImageUpdated' }, async () => { sent.push('a'); return true; });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.deep.equal([]);
    quiet();
    await queue.drain();
    expect(sent).to.deep.equal(['a']);

    const never = new EventQueue(silentLogger(), { quiet: () => new Promise<void>(() => undefined), maxYieldMs: 10 });
    never.add({ workload: 'ns/deployment/b', reason: 'ImageUpdated' }, async () => { sent.push('b'); return true; });
    await never.drain();
    expect(sent).to.deep.equal(['a', 'b']);
  });

  it('logs lost events at most once per interval, with the count since the last line', async () => {
    const { logger, warnings } = recordingLogger();
    const queue = new EventQueue(logger, { logIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) queue.add({ workload: `ns/deployment/w${i}`, reason: 'ImageUpdated' }, async () => false);
    await queue.drain();
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include({ failed: 1 });
  });
});
