import { expect } from 'chai';
import { parseRunId } from '../../../src/domain/index.js';
import {
  ReportConfig, describeRun, parseForgeRepository, reportLogLine, retryWait, type ReportedRun, type ReportResult,
} from '../../../src/report/index.js';

const run: ReportedRun = {
  id: parseRunId('20260101-101500-a1b2c3'), kind: 'build', watch: 'https://github.com/org/app.git^main',
  repo: 'https://github.com/org/app.git', branch: 'main', commit: 'a'.repeat(40),
  phase: 'running', reason: 'Started', message: '',
};

describe('parseForgeRepository', () => {
  const cases: readonly [string, { host: string; path: string } | undefined][] = [
    ['https://github.com/org/app.git', { host: 'github.com', path: 'org/app' }],
    ['https://github.com/org/app', { host: 'github.com', path: 'org/app' }],
    ['https://user:secret@GitHub.com/org/app.git/', { host: 'github.com', path: 'org/app' }],
    ['git@github.com:org/app.git', { host: 'github.com', path: 'org/app' }],
    ['github.com:org/app', { host: 'github.com', path: 'org/app' }],
    ['ssh://git@gitlab.example.com:2222/group/sub/app.git', { host: 'gitlab.example.com:2222', path: 'group/sub/app' }],
    ['http://127.0.0.1:8080/git/team/app.git', { host: '127.0.0.1:8080', path: 'git/team/app' }],
    ['/home/me/src/app', undefined],
    ['./app', undefined],
    ['.', undefined],
    ['file:///srv/git/app.git', undefined],
    ['https://github.com/justone', undefined],
    ['C:\\src\\app', undefined],
  ];
  for (const [url, expected] of cases) {
    it(`${url} → ${expected ? `${expected.host} ${expected.path}` : 'no forge'}`, () => {
      expect(parseForgeRepository(url)).to.deep.equal(expected);
    });
  }
});

describe('describeRun', () => {
  it('says how long a successful run took', () => {
    expect(describeRun({ ...run, phase: 'succeeded', startedAt: '2026-01-01T10:00:00Z', finishedAt: '2026-01-01T10:01:05Z' }))
      .to.equal('Run succeeded in 1m05s');
  });
  it('puts the failure message on one line', () => {
    expect(describeRun({ ...run, phase: 'failed', message: 'step 2 failed:\n  exit 3' })).to.equal('Run failed: step 2 failed: exit 3');
  });
  it('cuts to 140 characters, counting code points', () => {
    const text = describeRun({ ...run, phase: 'failed', message: '🚀'.repeat(200) });
    expect(Array.from(text)).to.have.lengthOf(140);
    expect(text.endsWith('…')).to.equal(true);
  });
});

describe('retryWait', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cases: readonly [string, number, Record<string, string>, number | 'backoff' | undefined][] = [
    ['5xx without Retry-After backs off', 502, {}, 'backoff'],
    ['5xx with Retry-After waits that long', 503, { 'retry-after': '2' }, 2000],
    ['429 with Retry-After', 429, { 'retry-after': '7' }, 7000],
    ['429 without hints backs off', 429, {}, 'backoff'],
    ['GitHub primary rate limit waits for the reset', 403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 30) }, 30_000],
    ['a plain 403 is final', 403, {}, undefined],
    ['401 is final', 401, {}, undefined],
    ['422 is final', 422, {}, undefined],
    ['404 is final', 404, {}, undefined],
  ];
  for (const [name, status, headers, expected] of cases) {
    it(name, () => expect(retryWait(status, headers, now)).to.equal(expected));
  }
});

describe('ReportConfig', () => {
  it('fills defaults', () => {
    const config = ReportConfig.parse({
      statuses: [{ provider: 'github', tokenFile: '/run/secrets/gh' }],
      notifications: [{ type: 'slack', url: 'https://hooks.slack.com/services/T/B/x', events: ['run.finished'] }],
    });
    expect(config.statuses[0]!.context).to.equal('keelson');
    expect(config.notifications[0]!.timeout.seconds).to.equal(10);
  });
  const bad: readonly [string, unknown, string][] = [
    ['no token', { statuses: [{ provider: 'github' }] }, 'statuses.0.tokenFile'],
    ['both tokens', { statuses: [{ provider: 'gitlab', tokenFile: 'a', tokenSecret: { name: 's', key: 'k' } }] }, 'statuses.0.tokenFile'],
    ['unknown provider', { statuses: [{ provider: 'gitea', tokenFile: 'a' }] }, 'statuses.0.provider'],
    ['a typo', { statuses: [{ provider: 'github', tokenFile: 'a', contxt: 'x' }] }, 'statuses.0'],
    ['no events', { notifications: [{ type: 'webhook', url: 'https://x.example/h', events: [] }] }, 'notifications.0.events'],
    ['unknown event', { notifications: [{ type: 'webhook', url: 'https://x.example/h', events: ['run.started'] }] }, 'notifications.0.events.0'],
    ['not http', { notifications: [{ type: 'slack', url: 'ftp://x.example/h', events: ['run.finished'] }] }, 'notifications.0.url'],
    ['bad timeout', { notifications: [{ type: 'slack', url: 'https://x.example/h', events: ['run.finished'], timeout: 'soon' }] }, 'notifications.0.timeout'],
  ];
  for (const [name, input, path] of bad) {
    it(`rejects ${name} at ${path}`, () => {
      const result = ReportConfig.safeParse(input);
      expect(result.success).to.equal(false);
      expect(result.error!.issues.map((issue) => issue.path.join('.'))).to.include(path);
    });
  }
});

describe('reportLogLine', () => {
  const base: ReportResult = { reporter: 'github-status', target: 'api.github.com org/app', event: 'run.started', state: 'pending', outcome: 'posted', attempts: 1, at: '' };
  it('is one short line when posted', () => {
    expect(reportLogLine(base)).to.equal('report: github-status run.started pending posted (api.github.com org/app)\n');
  });
  it('says NOT posted, how often it tried and why', () => {
    expect(reportLogLine({ ...base, outcome: 'failed', attempts: 4, detail: 'HTTP 502: Server Error' }))
      .to.equal('report: github-status run.started pending NOT posted (api.github.com org/app, 4 attempts): HTTP 502: Server Error\n');
  });
});
