import { expect } from 'chai';
import { parseRunId } from '../../../src/domain/index.js';
import { defaultStateDir, RunReason, type NewRun } from '../../../src/store/index.js';
import { stateFileName } from '../../../src/store/file-store.js';
import { parseRedisUrl } from '../../../src/store/redis-store.js';
import {
  applyTransition, compareNewestFirst, completeUtf8Length, listLimit, newRunRecord,
} from '../../../src/store/records.js';
import { parseStoredRun } from '../../../src/store/schema.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const T1 = new Date('2026-03-01T10:00:05.000Z');
const T2 = new Date('2026-03-01T10:01:00.000Z');

const RUN: NewRun = {
  id: parseRunId('20260301-100000-abcdef'), kind: 'build', watch: 'r^main', repo: 'r', branch: 'main',
  commit: 'c0ffee', phase: 'queued', reason: RunReason.Queued, message: 'queued', retryOf: undefined,
};

describe('run records', () => {
  it('start with one phase and no undefined fields', () => {
    const record = newRunRecord(RUN, T0);
    expect(record.phases).to.deep.equal([{ phase: 'queued', reason: 'Queued', message: 'queued', at: T0.toISOString() }]);
    expect(Object.keys(record)).not.to.include('retryOf');
    expect(record.startedAt).to.equal(undefined);
  });

  it('set startedAt once and finishedAt on a terminal phase', () => {
    const running = applyTransition(newRunRecord(RUN, T0), 'running', RunReason.Started, 'go', undefined, T1);
    const again = applyTransition(running, 'running', RunReason.Started, 'step 2', undefined, T2);
    expect(again.startedAt).to.equal(T1.toISOString());
    const done = applyTransition(again, 'failed', RunReason.StepFailed, 'exit 3', { exitCode: 3 }, T2);
    expect(done).to.include({ finishedAt: T2.toISOString(), exitCode: 3, phase: 'failed' });
    expect(done.phases.map((p) => p.phase)).to.deep.equal(['queued', 'running', 'running', 'failed']);
  });

  for (const phase of ['succeeded', 'failed', 'skipped', 'interrupted', 'cancelled'] as const) {
    it(`refuse to leave ${phase}`, () => {
      const finished = applyTransition(newRunRecord(RUN, T0), phase, RunReason.Shutdown, 'x', undefined, T1);
      expect(() => applyTransition(finished, 'running', RunReason.Started, 'y', undefined, T2))
        .to.throw().with.property('code', 'KEELSON_RUN_FINISHED');
    });
  }

  it('sort newest first, then by id', () => {
    const a = newRunRecord({ ...RUN, id: parseRunId('a') }, T0);
    const b = newRunRecord({ ...RUN, id: parseRunId('b') }, T0);
    const c = newRunRecord({ ...RUN, id: parseRunId('c') }, T1);
    expect([a, c, b].sort(compareNewestFirst).map((r) => r.id)).to.deep.equal(['c', 'b', 'a']);
  });

  for (const bad of [0, -1, 1.5, Number.NaN]) {
    it(`reject a list limit of ${bad}`, () => {
      expect(() => listLimit({ limit: bad })).to.throw(RangeError);
    });
  }

  it('round-trip through the stored-record schema, and name the bad field otherwise', () => {
    const record = newRunRecord(RUN, T0);
    expect(parseStoredRun(JSON.stringify(record))).to.deep.equal({ record });
    expect(parseStoredRun('{"id": "x"')).to.have.property('problem').that.match(/^not JSON/);
    expect(parseStoredRun(JSON.stringify({ ...record, phase: 'exploded' }))).to.have.property('problem').that.match(/^field phase:/);
  });
});

describe('completeUtf8Length', () => {
  const cases: Array<[string, string, number]> = [
    ['ascii', 'abc', 3],
    ['empty', '', 0],
    ['whole 2-byte', 'é', 2],
    ['whole 4-byte', 'a😀', 5],
  ];
  for (const [name, text, length] of cases) {
    it(`keeps ${name}`, () => expect(completeUtf8Length(Buffer.from(text))).to.equal(length));
  }
  const cut: Array<[string, string, number]> = [['2-byte', 'aé', 1], ['3-byte', 'a✓', 2], ['3-byte', 'a✓', 1], ['4-byte', 'a😀', 3], ['4-byte', 'a😀', 1]];
  for (const [name, text, drop] of cut) {
    it(`drops a ${name} character cut ${drop} byte(s) short`, () => {
      const bytes = Buffer.from(text);
      expect(completeUtf8Length(bytes.subarray(0, bytes.length - drop))).to.equal(1);
    });
  }
});

describe('stateFileName', () => {
  const cases: Array<[string, string]> = [
    ['watch-1', 'watch-1'],
    ['watch:a^main', 'watch%3Aa%5Emain'],
    ['../x', '%2E%2E%2Fx'],
    ['Main', '%4Dain'],
    ['ü', '%C3%BC'],
  ];
  for (const [key, name] of cases) {
    it(`maps ${JSON.stringify(key)} to ${name}`, () => expect(stateFileName(key)).to.equal(name));
  }
  it('keeps long names short and distinct', () => {
    const a = stateFileName('k'.repeat(1000));
    const b = stateFileName(`${'k'.repeat(999)}j`);
    expect(a.length).to.be.at.most(200);
    expect(a).not.to.equal(b);
  });
});

describe('defaultStateDir', () => {
  it('uses an absolute XDG_STATE_HOME', () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/xdg', HOME: '/home/u' })).to.equal('/xdg/keelson');
  });
  it('falls back to ~/.local/state when XDG_STATE_HOME is unset or relative', () => {
    expect(defaultStateDir({ HOME: '/home/u' })).to.equal('/home/u/.local/state/keelson');
    expect(defaultStateDir({ XDG_STATE_HOME: 'rel', HOME: '/home/u' })).to.equal('/home/u/.local/state/keelson');
  });
});

describe('parseRedisUrl', () => {
  const cases: Array<[string, string]> = [
    ['redis://localhost', 'redis://localhost:6379/0'],
    ['redis://:pa55word@redis.keelson.svc:6380/3', 'redis://redis.keelson.svc:6380/3'],
    ['rediss://user:pa55word@10.0.0.1', 'rediss://10.0.0.1:6379/0'],
  ];
  for (const [url, description] of cases) {
    it(`describes ${url.replace(/:[^:@/]+@/, ':***@')} without credentials`, () => {
      expect(parseRedisUrl(url).description).to.equal(description);
    });
  }
  for (const url of ['localhost:6379', 'http://h', 'redis://h/x', 'not a url', 'redis://:pa%ZZss@h', 'redis://us%E0%A4er:pw@h']) {
    it(`rejects ${url}`, () => {
      expect(() => parseRedisUrl(url)).to.throw().with.property('code', 'KEELSON_STORE_CONFIG');
    });
  }
});
