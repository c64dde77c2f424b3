import { expect } from 'chai';
import { InputError } from '../../../src/errors.js';
import { parseSchedule } from '../../../src/registry-watch/index.js';

const FROM = Date.parse('2026-01-01T00:00:05.500Z'); // a Thursday

describe('parseSchedule', () => {
  const cases: readonly [string, string, number][] = [
    ['@every 30s', '2026-01-01T00:00:35.500Z', 30_000],
    ['@every 1m30s', '2026-01-01T00:01:35.500Z', 90_000],
    ['*/10 * * * * *', '2026-01-01T00:00:10.000Z', 10_000],
    ['0 */5 * * * *', '2026-01-01T00:05:00.000Z', 300_000],
    ['*/5 * * * *', '2026-01-01T00:05:00.000Z', 300_000],
    ['@hourly', '2026-01-01T01:00:00.000Z', 3_600_000],
    ['@daily', '2026-01-02T00:00:00.000Z', 86_400_000],
    ['0 30 9 * * MON-FRI', '2026-01-01T09:30:00.000Z', 86_400_000],
  ];
  for (const [text, next, period] of cases) {
    it(`${text}: next ${next}, every ${period / 1000}s`, () => {
      const schedule = parseSchedule(text);
      expect(schedule.text).to.equal(text);
      expect(new Date(schedule.next(FROM)).toISOString()).to.equal(next);
      expect(schedule.period(FROM)).to.equal(period);
    });
  }

  it('runs strictly after the given time', () => {
    const schedule = parseSchedule('*/10 * * * * *');
    expect(new Date(schedule.next(Date.parse('2026-01-01T00:00:10Z'))).toISOString()).to.equal('2026-01-01T00:00:20.000Z');
  });

  const slots: readonly [string, string, number, string][] = [
    ['@every 30s', '2026-01-01T00:00:05.500Z', 7_000, '2026-01-01T00:00:07.000Z'],
    ['@every 30s', '2026-01-01T00:00:07.000Z', 7_000, '2026-01-01T00:00:07.000Z'],
    ['@every 30s', '2026-01-01T00:00:07.001Z', 7_000, '2026-01-01T00:00:37.000Z'],
    ['@every 1m', '2026-01-01T00:00:05.500Z', 0, '2026-01-01T00:01:00.000Z'],
    ['*/10 * * * * *', '2026-01-01T00:00:05.500Z', 2_500, '2026-01-01T00:00:12.500Z'],
    ['*/10 * * * * *', '2026-01-01T00:00:12.500Z', 2_500, '2026-01-01T00:00:12.500Z'],
    ['0 */5 * * * *', '2026-01-01T00:00:05.500Z', 0, '2026-01-01T00:05:00.000Z'],
  ];
  for (const [text, from, offset, at] of slots) {
    it(`${text} shifted by ${offset} ms: first run at or after ${from} is ${at}`, () => {
      expect(new Date(parseSchedule(text).at(Date.parse(from), offset)).toISOString()).to.equal(at);
    });
  }

  it('spreads @every over its interval and cron over at most a minute', () => {
    expect(parseSchedule('@every 30s').spread(FROM)).to.equal(30_000);
    expect(parseSchedule('@every 1h').spread(FROM)).to.equal(3_600_000);
    expect(parseSchedule('*/10 * * * * *').spread(FROM)).to.equal(10_000);
    expect(parseSchedule('@hourly').spread(FROM)).to.equal(60_000);
  });

  for (const bad of ['@every', '@every soon', 'nope', '61 * * * *', '* * * * * * *', '@every 10ms']) {
    it(`rejects ${JSON.stringify(bad)} naming the field`, () => {
      expect(() => parseSchedule(bad, 'keel.sh/pollSchedule')).to.throw(InputError, /^keel\.sh\/pollSchedule: /);
    });
  }
});
