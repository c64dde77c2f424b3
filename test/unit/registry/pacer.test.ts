import { expect } from 'chai';
import { RegistryPacer } from '../../../src/registry/pacer.js';

const OK = 200;

function setup(maxRate = 50) {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  return { clock, pacer: new RegistryPacer({ maxRate, now: () => clock.now }) };
}

describe('RegistryPacer', () => {
  it('starts at the most it may send and stays there while answers are fine', () => {
    const { pacer } = setup();
    for (let i = 0; i < 10; i++) expect(pacer.observe(OK, {})).to.deep.equal({ rate: 50, slowedDown: false, nearlyUsedUp: false });
  });

  it('halves the rate on each 429 and pauses for its Retry-After', () => {
    const { pacer } = setup();
    expect(pacer.observe(429, { 'retry-after': '7' })).to.include({ rate: 25, slowedDown: true });
    expect(pacer.pausedFor()).to.equal(7000);
    expect(pacer.observe(429, {})).to.include({ rate: 12.5, slowedDown: true });
    expect(pacer.pausedFor()).to.equal(7000, 'a later, shorter pause does not shorten the first');
  });

  it('climbs back a tenth of the maximum every 10 s without trouble', () => {
    const { clock, pacer } = setup();
    pacer.observe(429, {});
    pacer.observe(429, {});
    expect(pacer.rate).to.equal(12.5);
    clock.now += 5_000;
    expect(pacer.observe(OK, {}).rate).to.equal(12.5);
    clock.now += 5_000;
    expect(pacer.observe(OK, {}).rate).to.equal(17.5);
    for (let i = 0; i < 10; i++) {
      clock.now += 10_000;
      pacer.observe(OK, {});
    }
    expect(pacer.rate).to.equal(50);
  });

  const windows: ReadonlyArray<[string, Record<string, string>, number, boolean]> = [
    ['plenty left', { 'ratelimit-limit': '200;w=21600', 'ratelimit-remaining': '150;w=21600' }, 50, false],
    ['a tenth left: the rest spread over the window', { 'ratelimit-limit': '200;w=21600', 'ratelimit-remaining': '18;w=21600' }, 18 / 21600, true],
    ['the window only on the limit', { 'ratelimit-limit': '100;w=60', 'ratelimit-remaining': '6' }, 0.1, true],
    ['no window: only told', { 'ratelimit-limit': '100', 'ratelimit-remaining': '6' }, 50, true],
    ['none left: one request in the window', { 'ratelimit-limit': '100;w=3600', 'ratelimit-remaining': '0;w=3600' }, 1 / 3600, true],
  ];
  for (const [name, headers, rate, nearlyUsedUp] of windows) {
    it(`reads Docker Hub's rate-limit headers: ${name}`, () => {
      const { pacer } = setup();
      expect(pacer.observe(OK, headers)).to.deep.include({ nearlyUsedUp });
      expect(pacer.rate).to.be.closeTo(rate, 1e-9);
    });
  }

  it('goes back to full speed when the window fills up again', () => {
    const { pacer } = setup();
    pacer.observe(OK, { 'ratelimit-limit': '100;w=60', 'ratelimit-remaining': '1;w=60' });
    expect(pacer.rate).to.be.below(1);
    pacer.observe(OK, { 'ratelimit-limit': '100;w=60', 'ratelimit-remaining': '90;w=60' });
    expect(pacer.rate).to.equal(50);
  });

  it('waits out a pause before handing out a token', async () => {
    const pacer = new RegistryPacer({ maxRate: 1000 });
    pacer.observe(429, { 'retry-after': '0' });
    const started = Date.now();
    await pacer.take();
    expect(Date.now() - started).to.be.below(1000);
    const aborted = new AbortController();
    pacer.observe(429, { 'retry-after': '60' });
    aborted.abort(new Error('stopping'));
    let error: unknown;
    try {
      await pacer.take(aborted.signal);
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).to.equal('stopping');
  });
});
