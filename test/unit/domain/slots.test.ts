import { expect } from 'chai';
import { Slots, SupersededError, isSuperseded } from '../../../src/domain/index.js';

describe('Slots', () => {
  it('hands out at most `limit` slots, then serves waiters in order', async () => {
    const slots = new Slots(2);
    const a = await slots.acquire();
    const b = await slots.acquire();
    const order: string[] = [];
    const c = slots.acquire().then((release) => { order.push('c'); return release; });
    const d = slots.acquire().then((release) => { order.push('d'); return release; });
    await Promise.resolve();
    expect(slots.inUse).to.equal(2);
    expect(order).to.deep.equal([]);
    a();
    a(); // releasing twice frees one slot only
    const releaseC = await c;
    expect(order).to.deep.equal(['c']);
    b();
    (await d)();
    releaseC();
    expect(slots.inUse).to.equal(0);
  });

  it('lets a waiter give up when its signal aborts, without taking a slot', async () => {
    const slots = new Slots(1);
    const held = await slots.acquire();
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    controller.abort(new SupersededError('abcdef1234567890'));
    const reason = await waiting.then(() => undefined, (error: unknown) => error);
    expect(isSuperseded(reason)).to.equal(true);
    held();
    expect(slots.inUse).to.equal(0);
    (await slots.acquire())();
  });

  for (const bad of [0, -1, 1.5, Number.NaN]) {
    it(`refuses a limit of ${bad}`, () => expect(() => new Slots(bad)).to.throw(RangeError));
  }
});
