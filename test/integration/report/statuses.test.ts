import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration, parseRunId } from '../../../src/domain/index.js';
import { InputError } from '../../../src/errors.js';
import {
  GitHubStatusReporter, GitLabStatusReporter, ReportConfig, createReporters, recordReport, reportStateKey,
  type ReportResult, type ReportedRun,
} from '../../../src/report/index.js';
import { FileStore } from '../../../src/store/index.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';

const GITHUB_TOKEN = 'ghp_contractTestToken0001';
const GITLAB_TOKEN = 'glpat-contractTestToken02';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const fast = { maxRetries: 3, retryDelay: Duration.ofMilliseconds(5), timeout: Duration.ofSeconds(5) };

function runOf(repo: string, phase: ReportedRun['phase'] = 'running', message = ''): ReportedRun {
  return {
    id: parseRunId('20260101-101500-a1b2c3'), kind: 'build', watch: `${repo}^main`, repo, branch: 'main', commit: SHA,
    phase, reason: 'Started', message, startedAt: '2026-01-01T10:15:00Z', finishedAt: '2026-01-01T10:16:30Z',
  };
}

describe('commit statuses against the GitHub and GitLab contracts', function () {
  this.timeout(30_000);
  let server: ContractServer;
  const closers: { close(): Promise<void> }[] = [];

  before(async () => {
    server = await startContractServer({
      github: { tokens: { [GITHUB_TOKEN]: ['org/app'] } },
      gitlab: { tokens: { [GITLAB_TOKEN]: ['group/sub/app'] } },
    });
  });
  after(async () => {
    await Promise.all(closers.map((c) => c.close()));
    await server?.stop();
  });
  beforeEach(() => server.resetRecords());
  afterEach(() => expect(server.violations).to.deep.equal([]));

  function github(options: Partial<ConstructorParameters<typeof GitHubStatusReporter>[0]> = {}) {
    const reporter = new GitHubStatusReporter({
      token: GITHUB_TOKEN, apiUrl: server.githubApiUrl, runPageBaseUrl: 'https://keelson.example/', retry: fast, ...options,
    });
    closers.push(reporter);
    return reporter;
  }
  function gitlab(options: Partial<ConstructorParameters<typeof GitLabStatusReporter>[0]> = {}) {
    const reporter = new GitLabStatusReporter({
      token: GITLAB_TOKEN, apiUrl: server.gitlabApiUrl, runPageBaseUrl: 'https://keelson.example', retry: fast, ...options,
    });
    closers.push(reporter);
    return reporter;
  }

  it('GitHub: pending on start, success on finish, linked to the run page', async () => {
    const reporter = github();
    const started = await reporter.runStarted(runOf('git@github.com:org/app.git'));
    const finished = await reporter.runFinished(runOf('https://github.com/org/app.git', 'succeeded'));
    expect([...started, ...finished].map((r) => [r.outcome, r.state, r.target])).to.deep.equal([
      ['posted', 'pending', '127.0.0.1:' + new URL(server.url).port + ' org/app'],
      ['posted', 'success', '127.0.0.1:' + new URL(server.url).port + ' org/app'],
    ]);
    const statuses = server.githubStatuses.get('org/app')!.get(SHA)!.slice(-2);
    expect(statuses.map((s) => [s.state, s.context, s.target_url, s.description])).to.deep.equal([
      ['pending', 'keelson', 'https://keelson.example/runs/20260101-101500-a1b2c3', 'Run started'],
      ['success', 'keelson', 'https://keelson.example/runs/20260101-101500-a1b2c3', 'Run succeeded in 1m30s'],
    ]);
    expect(server.requests[0]!.path).to.equal('/api/v3/repos/org/app/statuses/' + SHA);
  });

  it('GitHub: a long failure message is cut to what the API accepts', async () => {
    const [result] = await github({ context: 'keelson/build' }).runFinished(runOf('https://github.com/org/app', 'failed', 'x'.repeat(500)));
    expect(result!.outcome).to.equal('posted');
    expect(result!.state).to.equal('failure');
    const last = server.githubStatuses.get('org/app')!.get(SHA)!.at(-1)!;
    expect(last.context).to.equal('keelson/build');
    expect(last.description).to.have.lengthOf(140);
  });

  it('GitHub: retries 502s and a 429 with Retry-After, then posts', async () => {
    server.failNext(2, { status: 502 });
    server.failNext(1, { status: 429, retryAfter: 1 });
    const [result] = await github().runStarted(runOf('https://github.com/org/app'));
    expect(result).to.include({ outcome: 'posted', attempts: 4, status: 201 });
    expect(server.requests.map((r) => r.status)).to.deep.equal([502, 502, 429, 201]);
  });

  it('GitHub: waits for x-ratelimit-reset on a rate-limit 403', async () => {
    server.failNext(1, { status: 403, rateLimitResetIn: 1 });
    const [result] = await github().runStarted(runOf('https://github.com/org/app'));
    expect(result).to.include({ outcome: 'posted', attempts: 2 });
  });

  it('GitHub: gives up after the retries and records it, without throwing', async () => {
    server.failNext(10, { status: 503 });
    const [result] = await github({ retry: { ...fast, maxRetries: 2 } }).runFinished(runOf('https://github.com/org/app', 'failed', 'boom'));
    expect(result).to.include({ outcome: 'failed', attempts: 3, status: 503, state: 'failure' });
    expect(result!.detail).to.equal('HTTP 503: Server Error');
    expect(server.requests).to.have.lengthOf(3);
  });

  it('GitHub: a bad token is one attempt, recorded with the API\'s message', async () => {
    const [result] = await github({ token: 'ghp_wrongToken' }).runStarted(runOf('https://github.com/org/app'));
    expect(result).to.include({ outcome: 'failed', attempts: 1, status: 401, detail: 'HTTP 401: Bad credentials' });
  });

  it('GitHub: a repository the token cannot see is a 404, not retried', async () => {
    const [result] = await github().runStarted(runOf('https://github.com/org/other'));
    expect(result).to.include({ outcome: 'failed', attempts: 1, status: 404, detail: 'HTTP 404: Not Found' });
  });

  it('GitHub: a local checkout is skipped unless a repository is configured', async () => {
    const [skipped] = await github().runStarted(runOf('/home/me/app'));
    expect(skipped).to.include({ outcome: 'skipped', attempts: 0 });
    const [posted] = await github({ repository: 'org/app' }).runStarted(runOf('/home/me/app'));
    expect(posted).to.include({ outcome: 'posted' });
  });

  it('GitHub: an unreachable API is retried and recorded', async () => {
    const [result] = await github({ apiUrl: 'http://127.0.0.1:1/api/v3', retry: { ...fast, maxRetries: 1 } }).runStarted(runOf('https://github.com/org/app'));
    expect(result).to.include({ outcome: 'failed', attempts: 2 });
    expect(result!.detail).to.match(/connection refused/);
  });

  it('GitLab: running on start, failed on finish, with the URL-encoded project path', async () => {
    const reporter = gitlab();
    const started = await reporter.runStarted(runOf('ssh://git@gitlab.example.com/group/sub/app.git'));
    const finished = await reporter.runFinished(runOf('https://gitlab.example.com/group/sub/app.git', 'failed', 'tests failed'));
    expect([...started, ...finished].map((r) => [r.outcome, r.state])).to.deep.equal([['posted', 'running'], ['posted', 'failed']]);
    expect(server.requests[0]!.path).to.equal(`/api/v4/projects/group%2Fsub%2Fapp/statuses/${SHA}`);
    const statuses = server.gitlabStatuses.get('group/sub/app')!.slice(-2);
    expect(statuses.map((s) => [s.status, s.name, s.ref, s.description, s.target_url])).to.deep.equal([
      ['running', 'keelson', 'main', 'Run started', 'https://keelson.example/runs/20260101-101500-a1b2c3'],
      ['failed', 'keelson', 'main', 'Run failed: tests failed', 'https://keelson.example/runs/20260101-101500-a1b2c3'],
    ]);
  });

  it('GitLab: the API refuses a transition to the state a status already has, and that is recorded', async () => {
    const reporter = gitlab({ context: 'twice' });
    await reporter.runStarted(runOf('https://gitlab.example.com/group/sub/app'));
    const [again] = await reporter.runStarted(runOf('https://gitlab.example.com/group/sub/app'));
    expect(again).to.include({ outcome: 'failed', status: 400, detail: 'HTTP 400: Cannot transition status via :run from :running' });
    await reporter.runFinished(runOf('https://gitlab.example.com/group/sub/app', 'cancelled'));
    expect(server.gitlabStatuses.get('group/sub/app')!.at(-1)!.status).to.equal('canceled');
  });

  it('GitLab: a bad token gets GitLab\'s 401 and no retry', async () => {
    const [result] = await gitlab({ token: 'glpat-wrong' }).runStarted(runOf('https://gitlab.example.com/group/sub/app'));
    expect(result).to.include({ outcome: 'failed', attempts: 1, status: 401, detail: 'HTTP 401: 401 Unauthorized' });
  });

  it('GitLab: an unknown project is GitLab\'s 404', async () => {
    const [result] = await gitlab().runStarted(runOf('https://gitlab.example.com/group/nope'));
    expect(result).to.include({ outcome: 'failed', status: 404, detail: 'HTTP 404: 404 Project Not Found' });
  });

  describe('createReporters and recordReport', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keelson-report-'));
      await writeFile(join(dir, 'github-token'), `${GITHUB_TOKEN}\n`);
      await writeFile(join(dir, 'gitlab-token'), GITLAB_TOKEN);
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('reports to every target, never throws, and records every outcome in the run log and state', async () => {
      const config = ReportConfig.parse({
        statuses: [
          { provider: 'github', apiUrl: server.githubApiUrl, tokenFile: 'github-token', repository: 'org/app' },
          { provider: 'gitlab', apiUrl: server.gitlabApiUrl, tokenSecret: { name: 'keelson-gitlab', key: 'token' }, repository: 'group/sub/app', context: 'keelson-ci' },
          { provider: 'github', apiUrl: server.githubApiUrl, tokenFile: 'github-token', repository: 'org/forbidden' },
        ],
        notifications: [{ type: 'webhook', url: server.webhookUrl, events: ['run.finished'] }],
      });
      const secretsAsked: string[] = [];
      const reporters = await createReporters(config, {
        baseDir: dir, runPageBaseUrl: 'http://keelson.local:8080', retry: fast,
        readSecret: async (ref) => { secretsAsked.push(`${ref.name}/${ref.key}`); return GITLAB_TOKEN; },
      });
      closers.push(reporters);
      expect(secretsAsked).to.deep.equal(['keelson-gitlab/token']);
      const store = await FileStore.open({ stateDir: join(dir, 'state') });
      try {
        const created = await store.createRun({
          id: parseRunId('20260101-101500-a1b2c3'), kind: 'build', watch: '/src/app^main', repo: '/src/app', branch: 'main', commit: SHA,
          phase: 'running', reason: 'Started', message: '',
        });
        await recordReport(store, created.id, await reporters.runStarted(created));
        const finished = await store.transitionRun(created.id, 'succeeded', 'StepsSucceeded', 'all steps passed');
        await recordReport(store, created.id, await reporters.runFinished(finished));

        const results = (await store.getState<ReportResult[]>(reportStateKey(created.id)))!;
        expect(results.map((r) => `${r.reporter} ${r.event} ${r.state ?? '-'} ${r.outcome}`)).to.deep.equal([
          'github-status run.started pending posted',
          'gitlab-status run.started running posted',
          'github-status run.started pending failed',
          'github-status run.finished success posted',
          'gitlab-status run.finished success posted',
          'github-status run.finished success failed',
          'webhook run.finished - posted',
        ]);
        const { text } = await store.readLog(created.id);
        expect(text).to.include('report: github-status run.finished success NOT posted');
        expect(text).to.include('HTTP 404: Not Found');
        expect(text).not.to.include(GITHUB_TOKEN);
        expect(server.webhookEvents.at(-1)).to.deep.include({ event: 'run.finished' });
        expect((server.webhookEvents.at(-1) as { run: { url: string; phase: string } }).run)
          .to.include({ url: 'http://keelson.local:8080/runs/20260101-101500-a1b2c3', phase: 'succeeded' });
        for (const request of server.requests) {
          expect(request.headers['content-type']).to.equal('application/json');
        }
      } finally {
        await store.close();
      }
    });

    it('a missing token file is bad input at start-up, naming the field', async () => {
      const config = ReportConfig.parse({ statuses: [{ provider: 'github', tokenFile: join(dir, 'absent') }] });
      const error = await createReporters(config).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InputError);
      expect((error as Error).message).to.match(/^report\.statuses\[0\]\.tokenFile: cannot read token file .*absent: ENOENT$/);
    });
  });
});
