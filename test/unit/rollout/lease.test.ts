import { expect } from 'chai';
import { formatLeaseSet, liveHolders, nextExpiry, parseLeaseSet, readHold, withHolder, withoutHolder } from '../../../src/rollout/index.js';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);

describe('leases and the build hold', () => {
  it('adds, renews and removes holders, dropping expired ones on every write', () => {
    let set = withHolder({}, 'run-a', at(10), T0);
    set = withHolder(set, 'run-b', at(5), T0);
    expect(liveHolders(set, T0)).to.deep.equal(['run-a', 'run-b']);
    set = withHolder(set, 'run-a', at(20), at(1));
    expect(set['run-a']).to.equal(at(20).toISOString());
    // run-b expired at minute 5: gone from the next write
    set = withHolder(set, 'run-c', at(30), at(6));
    expect(Object.keys(set).sort()).to.deep.equal(['run-a', 'run-c']);
    set = withoutHolder(set, 'run-a', at(6));
    expect(liveHolders(set, at(6))).to.deep.equal(['run-c']);
    expect(formatLeaseSet(withoutHolder(set, 'run-c', at(6)))).to.equal(null);
  });

  it('round-trips through the annotation text', () => {
    const set = withHolder(withHolder({}, 'b', at(1), T0), 'a', at(2), T0);
    const text = formatLeaseSet(set)!;
    expect(JSON.parse(text)).to.deep.equal({ a: at(2).toISOString(), b: at(1).toISOString() });
    expect(parseLeaseSet(text)).to.deep.equal(set);
  });

  describe('readHold', () => {
    const cases: Array<{ name: string; annotations: Record<string, string> | undefined; now: Date; held: boolean; holders?: string[]; recheck?: Date }> = [
      { name: 'no annotation', annotations: undefined, now: T0, held: false },
      { name: 'empty value', annotations: { 'keelson.dev/hold': '' }, now: T0, held: false },
      { name: 'hand-set hold without expiry', annotations: { 'keelson.dev/hold': 'debugging' }, now: at(10_000), held: true, holders: ['debugging'] },
      { name: 'hand-set hold before hold-until', annotations: { 'keelson.dev/hold': 'run-1', 'keelson.dev/hold-until': at(5).toISOString() }, now: T0, held: true, holders: ['run-1'], recheck: at(5) },
      { name: 'hand-set hold after hold-until', annotations: { 'keelson.dev/hold': 'run-1', 'keelson.dev/hold-until': at(5).toISOString() }, now: at(5), held: false },
      { name: 'unparsable hold-until never expires', annotations: { 'keelson.dev/hold': 'run-1', 'keelson.dev/hold-until': 'tomorrow' }, now: at(99_999), held: true },
      { name: 'JSON set, one live', annotations: { 'keelson.dev/hold': JSON.stringify({ a: at(1).toISOString(), b: at(9).toISOString() }) }, now: at(2), held: true, holders: ['b'], recheck: at(9) },
      { name: 'JSON set, all expired', annotations: { 'keelson.dev/hold': JSON.stringify({ a: at(1).toISOString() }) }, now: at(1), held: false },
      { name: 'broken JSON is a plain holder id', annotations: { 'keelson.dev/hold': '{oops' }, now: T0, held: true, holders: ['{oops'] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const hold = readHold(c.annotations, c.now);
        expect(hold.held).to.equal(c.held);
        if (c.holders) expect(hold.holders).to.deep.equal(c.holders);
        if (c.recheck) expect(hold.recheckAt?.toISOString()).to.equal(c.recheck.toISOString());
      });
    }
  });

  it('nextExpiry ignores holders without expiry and expired ones', () => {
    const set = { a: null, b: at(3).toISOString(), c: at(1).toISOString() };
    expect(nextExpiry(set, at(2))?.toISOString()).to.equal(at(3).toISOString());
    expect(nextExpiry({ a: null }, T0)).to.equal(undefined);
  });
});
