import { expect } from 'chai';
import { AnnotationError, isPollSchedule, lookupSetting, readWorkloadSettings } from '../../../src/rollout/index.js';

const W = 'default/deployment/app';

describe('rollout annotations', () => {
  describe('precedence: annotation over label, keelson.dev over keel.sh', () => {
    const cases: Array<{ name: string; annotations?: Record<string, string>; labels?: Record<string, string>; want: string | undefined; source?: string }> = [
      { name: 'keel.sh annotation alone', annotations: { 'keel.sh/policy': 'minor' }, want: 'minor', source: 'annotation keel.sh/policy' },
      { name: 'keel.sh label alone', labels: { 'keel.sh/policy': 'major' }, want: 'major', source: 'label keel.sh/policy' },
      { name: 'annotation wins over label', annotations: { 'keel.sh/policy': 'minor' }, labels: { 'keel.sh/policy': 'major' }, want: 'minor' },
      { name: 'keelson.dev annotation wins over keel.sh annotation', annotations: { 'keel.sh/policy': 'minor', 'keelson.dev/policy': 'patch' }, want: 'patch', source: 'annotation keelson.dev/policy' },
      { name: 'keel.sh annotation wins over keelson.dev label', annotations: { 'keel.sh/policy': 'minor' }, labels: { 'keelson.dev/policy': 'patch' }, want: 'minor' },
      { name: 'keelson.dev label wins over keel.sh label', labels: { 'keel.sh/policy': 'minor', 'keelson.dev/policy': 'all' }, want: 'all' },
      { name: 'nothing', annotations: { 'other/policy': 'x' }, want: undefined },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const found = lookupSetting('policy', c.annotations, c.labels);
        expect(found?.value).to.equal(c.want);
        if (c.source) expect(found?.source).to.equal(c.source);
      });
    }

    it('reads the legacy keel.sh/match-tag after keel.sh/matchTag', () => {
      expect(lookupSetting('matchTag', { 'keel.sh/match-tag': 'true' }, undefined)?.value).to.equal('true');
      expect(lookupSetting('matchTag', { 'keel.sh/match-tag': 'true', 'keel.sh/matchTag': 'false' }, undefined)?.value).to.equal('false');
    });

    it('pinDigest exists only under keelson.dev', () => {
      expect(lookupSetting('pinDigest', { 'keel.sh/pinDigest': 'true' }, undefined)).to.equal(undefined);
      expect(lookupSetting('pinDigest', { 'keelson.dev/pinDigest': 'true' }, undefined)?.value).to.equal('true');
    });
  });

  it('fills Keel defaults', () => {
    const s = readWorkloadSettings(W, { 'keel.sh/policy': 'force' }, undefined);
    expect(s.policy.kind).to.equal('force');
    expect(s.trigger).to.equal('default');
    expect(s.pollSchedule).to.equal('@every 1m');
    expect(s.matchTag).to.equal(false);
    expect(s.matchPreRelease).to.equal(true);
    expect(s.approvals).to.equal(0);
    expect(s.approvalDeadlineHours).to.equal(24);
    expect(s.initContainers).to.equal(false);
    expect(s.pinDigest).to.equal(false);
    expect(s.monitorContainers).to.equal(undefined);
  });

  it('reads every setting', () => {
    const s = readWorkloadSettings(W, {
      'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '0 */5 * * * *',
      'keel.sh/matchPreRelease': 'false', 'keel.sh/monitorContainers': '^(app|side)$', 'keel.sh/approvals': '2',
      'keel.sh/approvalDeadline': '5', 'keelson.dev/pinDigest': 'true', 'keel.sh/initContainers': 'true',
    }, { 'keel.sh/matchTag': 'true' });
    expect(s).to.include({ trigger: 'poll', pollSchedule: '0 */5 * * * *', matchPreRelease: false, matchTag: true, approvals: 2, approvalDeadlineHours: 5, pinDigest: true, initContainers: true });
    expect(s.monitorContainers?.test('app')).to.equal(true);
    expect(s.monitorContainers?.test('other')).to.equal(false);
    expect(s.sources.matchTag).to.equal('keel.sh/matchTag');
  });

  describe('bad values name the workload and the field as written', () => {
    const cases: Array<{ name: string; annotations: Record<string, string>; labels?: Record<string, string>; field: string; text: RegExp }> = [
      { name: 'unknown policy', annotations: { 'keel.sh/policy': 'sometimes' }, field: 'keel.sh/policy', text: /unknown policy "sometimes"/ },
      { name: 'bad trigger', annotations: { 'keel.sh/policy': 'all', 'keel.sh/trigger': 'push' }, field: 'keel.sh/trigger', text: /poll or default/ },
      { name: 'bad schedule', annotations: { 'keel.sh/policy': 'all', 'keel.sh/pollSchedule': 'every minute' }, field: 'keel.sh/pollSchedule', text: /@every 1m/ },
      { name: 'bad approvals', annotations: { 'keel.sh/policy': 'all', 'keel.sh/approvals': 'two' }, field: 'keel.sh/approvals', text: /whole number/ },
      { name: 'bad boolean in a keelson.dev label', annotations: { 'keel.sh/policy': 'all' }, labels: { 'keelson.dev/matchPreRelease': 'yes' }, field: 'keelson.dev/matchPreRelease', text: /true or false/ },
      { name: 'bad regexp', annotations: { 'keel.sh/policy': 'all', 'keel.sh/monitorContainers': '(' }, field: 'keel.sh/monitorContainers', text: /invalid regexp/ },
      { name: 'zero deadline', annotations: { 'keel.sh/policy': 'all', 'keel.sh/approvalDeadline': '0' }, field: 'keel.sh/approvalDeadline', text: /hours > 0/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        let caught: unknown;
        try {
          readWorkloadSettings(W, c.annotations, c.labels);
        } catch (error) {
          caught = error;
        }
        expect(caught).to.be.instanceOf(AnnotationError);
        const error = caught as AnnotationError;
        expect(error.workload).to.equal(W);
        expect(error.field).to.equal(c.field);
        expect(error.message).to.match(c.text);
        expect(error.message.startsWith(`${W}: ${c.field}: `)).to.equal(true);
        expect(error.exitCode).to.equal(2);
      });
    }

    it('reports every bad field at once', () => {
      expect(() => readWorkloadSettings(W, { 'keel.sh/policy': 'all', 'keel.sh/trigger': 'x', 'keel.sh/approvals': 'y' }, undefined))
        .to.throw(AnnotationError, /keel\.sh\/trigger: .*; keel\.sh\/approvals: /);
    });
  });

  describe('poll schedules', () => {
    const cases: Array<[string, boolean]> = [
      ['@every 1m', true], ['@every 1m30s', true], ['@every 500ms', false], ['@every 1s', true], ['@hourly', true], ['@daily', true],
      ['0 */5 * * * *', true], ['*/10 * * * *', true], ['@every', false], ['@every soon', false], ['@every 0s', false],
      ['61 * * * * *', false], ['* * *', false], ['', false], ['@fortnightly', false],
    ];
    for (const [text, ok] of cases) it(`${JSON.stringify(text)} -> ${ok}`, () => expect(isPollSchedule(text)).to.equal(ok));
  });
});
