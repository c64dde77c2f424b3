import { expect } from 'chai';
import { dnsLabel, isDnsLabel, Duration, newRunId, parseRunId } from '../../../src/domain/index.js';

describe('dnsLabel', () => {
  const cases: Array<[string, string]> = [
    ['main', 'main'],
    ['Feature/X_y', 'feature-x-y'],
    ['--lead--trail--', 'lead-trail'],
    ['ünïcödé', 'unicode'],
    ['', 'x'],
    ['///', 'x'],
    ['git@github.com:org/repo.git', 'git-github-com-org-repo-git'],
  ];
  for (const [input, expected] of cases) {
    it(`maps ${JSON.stringify(input)} to ${expected}`, () => {
      expect(dnsLabel(input)).to.equal(expected);
    });
  }

  it('cuts long names to 63 characters and keeps them distinct with a hash', () => {
    const a = dnsLabel(`${'a'.repeat(80)}-one`);
    const b = dnsLabel(`${'a'.repeat(80)}-two`);
    expect(a).to.have.length.at.most(63);
    expect(b).to.have.length.at.most(63);
    expect(a).to.not.equal(b);
    expect(isDnsLabel(a)).to.equal(true);
  });

  it('honours a shorter limit', () => {
    const label = dnsLabel('https://example.com/some/very/long/repository/name.git', 20);
    expect(label).to.have.length.at.most(20);
    expect(isDnsLabel(label)).to.equal(true);
  });

  it('always yields a valid label for awkward input', () => {
    for (const input of ['-', 'A', '0', '9-', `${'-'.repeat(70)}a`, 'a'.repeat(63), 'a'.repeat(64), '_x_']) {
      expect(isDnsLabel(dnsLabel(input)), input).to.equal(true);
    }
  });
});

describe('Duration', () => {
  const cases: Array<[string, number]> = [
    ['30s', 30_000], ['@every 30s', 30_000], ['5m', 300_000], ['1h30m', 5_400_000], ['250ms', 250], ['10', 10_000], ['1.5s', 1500],
  ];
  for (const [text, ms] of cases) {
    it(`parses ${text}`, () => expect(Duration.parse(text).milliseconds).to.equal(ms));
  }
  for (const bad of ['', 'soon', '5 minutes', '1x', '-5s', '5s3']) {
    it(`rejects ${JSON.stringify(bad)}`, () => expect(Duration.tryParse(bad)).to.equal(undefined));
  }
  it('prints compactly', () => {
    expect(Duration.parse('1h30m').toString()).to.equal('1h30m');
    expect(Duration.parse('250ms').toString()).to.equal('250ms');
  });
});

describe('run ids', () => {
  it('are DNS labels that sort by creation time', () => {
    const early = newRunId(new Date('2026-01-01T00:00:00Z'));
    const late = newRunId(new Date('2026-01-02T00:00:00Z'));
    expect(isDnsLabel(early)).to.equal(true);
    expect(early < late).to.equal(true);
    expect(parseRunId(early)).to.equal(early);
  });
  it('rejects text that is not a run id', () => {
    expect(() => parseRunId('Not A Run')).to.throw(/not a run id/);
  });
});
