import { expect } from 'chai';
import { Limiter } from '../../../src/rollout/limiter.js';

/** A piece of work that runs until the test lets it finish. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

describe('Limiter', () => {
  it('runs at most `concurrency` pieces at once, the rest in the order they came', async () => {
    const limiter = new Limiter(2);
    const gates = [gate(), gate(), gate(), gate()];
    const started: number[] = [];
    const done = gates.map((g, i) => limiter.run(async () => {
      started.push(i);
      await g.promise;
      return i;
    }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).to.deep.equal([0, 1]);
    expect([limiter.active, limiter.pending]).to.deep.equal([2, 2]);

    gates[1]!.open();
    await done[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).to.deep.equal([0, 1, 2]);
    expect(limiter.active).to.equal(2);

    for (const g of gates) g.open();
    expect(await Promise.all(done)).to.deep.equal([0, 1, 2, 3]);
    expect([limiter.active, limiter.pending]).to.deep.equal([0, 0]);
  });

  it('hands a freed place to the one waiting, not to a newcomer', async () => {
    const limiter = new Limiter(1);
    const first = gate();
    const order: string[] = [];
    const a = limiter.run(async () => { await first.promise; order.push('a'); });
    const b = limiter.run(async () => { order.push('b'); });
    first.open();
    await a;
    // b holds the place now; c, arriving after a finished, runs after b and never beside it.
    const c = limiter.run(async () => { order.push(`c:${limiter.active}`); });
    await Promise.all([b, c]);
    expect(order).to.deep.equal(['a', 'b', 'c:1']);
  });

  it('frees the place of work that fails, and passes the failure on', async () => {
    const limiter = new Limiter(1);
    const failed = limiter.run(() => Promise.reject(new Error('refused')));
    const next = limiter.run(async () => 'ran');
    const error = await failed.then(() => undefined, (e: unknown) => e);
    expect((error as Error | undefined)?.message).to.equal('refused');
    expect(await next).to.equal('ran');
    expect(limiter.active).to.equal(0);
  });

  it('tells when it is idle: at once when nothing runs, else when the last piece (and all waiting) is done', async () => {
    const limiter = new Limiter(1);
    let idle = false;
    await limiter.whenIdle();
    const a = gate();
    const b = gate();
    const first = limiter.run(() => a.promise);
    const second = limiter.run(() => b.promise);
    void limiter.whenIdle().then(() => { idle = true; });
    a.open();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).to.equal(false);
    b.open();
    await second;
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).to.equal(true);
  });

  it('refuses a concurrency below one', () => {
    expect(() => new Limiter(0)).to.throw(TypeError, /concurrency/);
    expect(() => new Limiter(1.5)).to.throw(TypeError, /concurrency/);
  });
});
