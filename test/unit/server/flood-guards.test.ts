import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log/index.js';
import { ThrottledWarning } from '../../../src/server/log-throttle.js';
import { RecentSet } from '../../../src/server/recent-set.js';
import { until } from '../../support/wait.js';

describe('RecentSet', () => {
  let now = 0;
  const clock = (): number => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('remembers a key for ttlMs, then forgets it', () => {
    const set = new RecentSet({ capacity: 10, ttlMs: 1000, now: clock });
    set.add('a');
    now += 999;
    expect(set.has('a')).to.equal(true);
    now += 1;
    expect(set.has('a')).to.equal(false);
    expect(set.size).to.equal(0);
  });

  it('keeps at most capacity keys, dropping the oldest first', () => {
    const set = new RecentSet({ capacity: 3, ttlMs: 1000, now: clock });
    for (const key of ['a', 'b', 'c', 'd']) {
      set.add(key);
      now += 1;
    }
    expect(['a', 'b', 'c', 'd'].map((k) => set.has(k))).to.deep.equal([false, true, true, true]);
    expect(set.size).to.equal(3);
  });

  it('stays bounded under a flood of distinct keys', () => {
    const set = new RecentSet({ capacity: 100, ttlMs: 60_000, now: clock });
    for (let i = 0; i < 10_000; i++) set.add(`delivery-${i}`);
    expect(set.size).to.equal(100);
    expect(set.has('delivery-9999')).to.equal(true);
    expect(set.has('delivery-0')).to.equal(false);
  });

  it('counts a key added again from its latest add', () => {
    const set = new RecentSet({ capacity: 2, ttlMs: 1000, now: clock });
    set.add('a');
    set.add('b');
    set.add('a');
    set.add('c');
    expect(set.has('a')).to.equal(true);
    expect(set.has('b')).to.equal(false);
  });
});

describe('ThrottledWarning', () => {
  function capture() {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return { logger: createLogger({ destination, pretty: false, level: 'info' }), lines };
  }

  it('logs the first warning with its fields and counts the rest until flushed', () => {
    const { logger, lines } = capture();
    const warning = new ThrottledWarning(logger, 'bad thing', 60_000);
    for (let i = 0; i < 1000; i++) warning.note({ attempt: i });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ msg: 'bad thing', attempt: 0 });
    warning.flush();
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include({ msg: 'bad thing', repeated: 999 });
    warning.flush();
    expect(lines).to.have.length(2);
  });

  it('writes one summary line per interval while a flood goes on', async () => {
    const { logger, lines } = capture();
    const warning = new ThrottledWarning(logger, 'bad thing', 20);
    warning.note({});
    warning.note({});
    warning.note({});
    const summary = await until(async () => lines.find((l) => l.repeated !== undefined), 'the summary line', 5000);
    expect(summary).to.include({ repeated: 2 });
    warning.flush();
    expect(lines.filter((l) => l.repeated !== undefined)).to.have.length(1);
  });
});
