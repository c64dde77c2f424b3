import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { registerSecret } from '../../../src/log/index.js';
import { ApprovalBook, type Approval } from '../../../src/rollout/index.js';
import { RunReason, type RunRecord } from '../../../src/store/index.js';
import {
  approvalBookSource, createServer, signGitHubBody, type ListeningServer, type Readiness, type ServerOptions,
} from '../../../src/server/index.js';
import { openTempStore, RecordingPushSink, RecordingRegistry, seedRun, type TempStore } from './fixtures.js';

const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const HOOK_SECRET = `hook-${randomBytes(12).toString('hex')}`;
const COMMIT = 'a1b2c3d4'.repeat(5);

interface SseEvent {
  readonly event: string;
  readonly id?: string;
  readonly data: string;
}

/** Reads server-sent events from a fetch response until `until` says stop. */
async function readEvents(response: Response, until: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split('\n').filter((l) => !l.startsWith(':'));
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
        if (event) events.push({ event, data: data.join('\n'), ...(id ? { id } : {}) });
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

describe('status server over HTTP with a real FileStore', function () {
  this.timeout(30_000);
  let temp: TempStore;
  let server: ListeningServer;
  let registry: RecordingRegistry;
  let pushes: RecordingPushSink;
  let book: ApprovalBook;
  let finished: RunRecord;
  let running: RunRecord;
  let watchChecks: Array<string | undefined>;
  const started: ListeningServer[] = [];

  async function start(options: Partial<ServerOptions> = {}): Promise<ListeningServer> {
    const s = await createServer({ store: temp.store, logPollMs: 25, ...options }).listen(0, '127.0.0.1');
    started.push(s);
    return s;
  }

  before(async () => {
    temp = await openTempStore();
    finished = await seedRun(temp.store, {
      watch: 'https://git.example/team/app.git^main', log: 'step 1\nstep 2\n',
      image: { ref: '127.0.0.1:5000/team/app:main', digest: `sha256:${'ab'.repeat(32)}`, pushed: true },
    });
    await seedRun(temp.store, { watch: 'https://git.example/team/other.git^dev', phase: 'failed' });
    running = await seedRun(temp.store, { watch: 'https://git.example/team/app.git^main', phase: 'running', log: 'started\n' });
    registry = new RecordingRegistry();
    pushes = new RecordingPushSink();
    book = new ApprovalBook(temp.store);
    watchChecks = [];
    server = await start({
      sources: {
        registry, gitPush: pushes, approvals: approvalBookSource(book),
        watches: { watches: () => [{ key: 'https://git.example/team/app.git^main', display: 'https://git.example/team/app.git^main', failures: 0 }], checkNow: (key) => watchChecks.push(key) },
      },
      auth: { token: TOKEN },
      githubWebhookSecret: HOOK_SECRET,
    });
  });
  after(async () => {
    await Promise.all(started.map((s) => s.close()));
    await temp?.remove();
  });
  beforeEach(() => {
    registry.calls.length = 0;
    pushes.events.length = 0;
  });

  const post = (path: string, body: string | object, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${server.url}${path}`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  describe('health, readiness and metrics', () => {
    it('answers /healthz', async () => {
      const res = await fetch(`${server.url}/healthz`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('ok\n');
    });

    it('is ready when the store answers and every source is ready', async () => {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).to.equal(200);
    });

    it('is not ready while a source says so, with its reason', async () => {
      let state: Readiness = { ready: false, reason: 'first poll not done' };
      const s = await start({ sources: { watches: { watches: () => [], ready: () => state } } });
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).to.equal(503);
      expect(await res.text()).to.equal('not ready: watches: first poll not done\n');
      state = { ready: true };
      expect((await fetch(`${s.url}/readyz`)).status).to.equal(200);
    });

    it('serves Prometheus metrics, counting webhook deliveries', async () => {
      await post('/webhooks/registry', '{not json');
      const res = await fetch(`${server.url}/metrics`);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      const text = await res.text();
      for (const name of ['keelson_runs_total', 'keelson_run_duration_seconds', 'keelson_registry_polls_total', 'keelson_rollouts_total']) {
        expect(text).to.include(`# TYPE ${name}`);
      }
      expect(text).to.match(/keelson_webhook_deliveries_total\{source="registry",result="bad_request"\} [1-9]/);
    });
  });

  describe('registry webhooks', () => {
    const formats: Array<[string, object, string]> = [
      ['Docker distribution', {
        events: [
          { action: 'push', target: { mediaType: 'application/octet-stream', repository: 'team/app', digest: 'sha256:1' }, request: { host: '127.0.0.1:5000' } },
          { action: 'push', target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', repository: 'team/app', tag: 'main', digest: 'sha256:2' }, request: { host: '127.0.0.1:5000' } },
        ],
      }, '127.0.0.1:5000/team/app'],
      ['Docker Hub', { push_data: { tag: '1.2.3', pusher: 'x' }, repository: { repo_name: 'org/app', namespace: 'org' } }, 'docker.io/org/app'],
      ['Harbor', { type: 'PUSH_ARTIFACT', event_data: { resources: [{ tag: 'v1', resource_url: 'harbor.example/proj/app:v1' }], repository: { repo_full_name: 'proj/app' } } }, 'harbor.example/proj/app'],
    ];
    for (const [format, body, repository] of formats) {
      it(`${format}: one immediate check of ${repository}`, async () => {
        const res = await post('/webhooks/registry', body, { 'content-type': 'application/vnd.docker.distribution.events.v1+json' });
        expect(res.status).to.equal(202);
        expect(await res.json()).to.have.property('repositories').that.deep.equals([repository]);
        expect(registry.calls).to.deep.equal([repository]);
      });
    }

    it('answers malformed JSON with 400 and a one-line reason, checking nothing', async () => {
      const res = await post('/webhooks/registry', '{"events": [');
      expect(res.status).to.equal(400);
      const { error } = await res.json() as { error: string };
      expect(error).to.match(/^malformed JSON: /).and.not.include('\n');
      expect(registry.calls).to.deep.equal([]);
    });

    it('answers a body of an unknown shape with 400 naming what it expected', async () => {
      const res = await post('/webhooks/registry', { hello: 'world' });
      expect(res.status).to.equal(400);
      expect((await res.json() as { error: string }).error).to.match(/expected Docker distribution/);
      expect(registry.calls).to.deep.equal([]);
    });

    it('refuses a body over 1 MiB with 413', async () => {
      const res = await post('/webhooks/registry', `{"events":[],"pad":"${'x'.repeat(1024 * 1024)}"}`);
      expect(res.status).to.equal(413);
      expect(registry.calls).to.deep.equal([]);
    });
  });

  describe('GitHub webhooks', () => {
    const push = JSON.stringify({
      ref: 'refs/heads/main', after: COMMIT, deleted: false,
      repository: { clone_url: 'https://github.com/team/app.git', ssh_url: 'git@github.com:team/app.git', html_url: 'https://github.com/team/app' },
    });

    it('hands a signed push to the git watcher', async () => {
      const res = await post('/webhooks/github', push, { 'x-github-event': 'push', 'x-hub-signature-256': signGitHubBody(HOOK_SECRET, push) });
      expect(res.status).to.equal(202);
      await new Promise((r) => setImmediate(r));
      expect(pushes.events).to.deep.equal([{
        repoUrls: ['https://github.com/team/app.git', 'git@github.com:team/app.git', 'https://github.com/team/app'], branch: 'main', commit: COMMIT,
      }]);
    });

    it('answers a signed ping with 200', async () => {
      const ping = '{"zen":"Design for failure.","hook_id":1}';
      const res = await post('/webhooks/github', ping, { 'x-github-event': 'ping', 'x-hub-signature-256': signGitHubBody(HOOK_SECRET, ping) });
      expect(res.status).to.equal(200);
    });

    const forged: Array<[string, Record<string, string>]> = [
      ['a forged signature', { 'x-hub-signature-256': signGitHubBody('not-the-secret', push) }],
      ['no signature', {}],
      ['a signature of another body', { 'x-hub-signature-256': signGitHubBody(HOOK_SECRET, push.replace('main', 'evil')) }],
    ];
    for (const [what, headers] of forged) {
      it(`answers ${what} with 401 and triggers nothing`, async () => {
        const res = await post('/webhooks/github', push, { 'x-github-event': 'push', ...headers });
        expect(res.status).to.equal(401);
        await new Promise((r) => setImmediate(r));
        expect(pushes.events).to.deep.equal([]);
      });
    }

    it('answers 404 with a JSON error saying how to configure webhooks when no secret is set, also to a form post', async () => {
      const bare = await start({ sources: { gitPush: pushes } });
      for (const contentType of ['application/json', 'application/x-www-form-urlencoded']) {
        const res = await fetch(`${bare.url}/webhooks/github`, { method: 'POST', headers: { 'content-type': contentType, 'x-github-event': 'push' }, body: push });
        expect(res.status).to.equal(404);
        expect(res.headers.get('content-type')).to.match(/^application\/json/);
        const { error } = await res.json() as { error: string };
        expect(error).to.match(/^GitHub webhooks are not configured: /).and.include('--github-secret-file').and.include('githubSecretFile');
      }
      const unwatched = await start({ githubWebhookSecret: HOOK_SECRET });
      const res = await fetch(`${unwatched.url}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: push });
      expect(res.status).to.equal(404);
      expect((await res.json() as { error: string }).error).to.include('no git watches');
      await new Promise((r) => setImmediate(r));
      expect(pushes.events).to.deep.equal([]);
    });
  });

  describe('JSON API', () => {
    it('lists runs newest first, filtered by watch and limited', async () => {
      const all = await (await fetch(`${server.url}/api/runs`)).json() as RunRecord[];
      expect(all.map((r) => r.id)).to.include.members([finished.id, running.id]).and.have.length(3);
      const some = await (await fetch(`${server.url}/api/runs?watch=${encodeURIComponent('https://git.example/team/app.git^main')}&limit=1`)).json() as RunRecord[];
      expect(some.map((r) => r.id)).to.deep.equal([running.id]);
      expect((await fetch(`${server.url}/api/runs?limit=zero`)).status).to.equal(400);
    });

    it('returns a run record and its log, 404 for an unknown run', async () => {
      const record = await (await fetch(`${server.url}/api/runs/${finished.id}`)).json() as RunRecord;
      expect(record).to.include({ id: finished.id, phase: 'succeeded' });
      expect(await (await fetch(`${server.url}/api/runs/${finished.id}/log`)).text()).to.equal('step 1\nstep 2\n');
      expect((await fetch(`${server.url}/api/runs/20990101-000000-000000`)).status).to.equal(404);
      expect((await fetch(`${server.url}/api/runs/..%2Fetc`)).status).to.equal(404);
    });

    it('redacts secrets registered after the log was written', async () => {
      const secret = `late-secret-${randomBytes(6).toString('hex')}`;
      const run = await seedRun(temp.store, { log: `password is ${secret}\n` });
      registerSecret(secret);
      expect(await (await fetch(`${server.url}/api/runs/${run.id}/log`)).text()).to.equal('password is [REDACTED]\n');
      expect(await (await fetch(`${server.url}/runs/${run.id}`)).text()).not.to.include(secret);
    });

    it('answers 404 for a section without a source', async () => {
      const res = await fetch(`${server.url}/api/workloads`);
      expect(res.status).to.equal(404);
      expect(await res.json()).to.deep.equal({ error: 'this server has no workloads source' });
    });
  });

  describe('mutating endpoints', () => {
    let approval: Approval;
    beforeEach(async () => {
      const workload = { kind: 'Deployment' as const, namespace: 'default', name: `web-${randomBytes(3).toString('hex')}` };
      ({ approval } = await book.request(workload, [{ container: 'app', init: false, from: 'app:1.0.0', to: 'app:1.1.0' }], 2, 24, new Date()));
    });

    it('need a bearer token: 401 without, 403 when wrong, and nothing changes', async () => {
      const none = await post(`/api/approvals/${approval.id}/approve`, {});
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.match(/^Bearer/);
      const wrong = await post(`/api/approvals/${approval.id}/approve`, {}, { authorization: 'Bearer nope' });
      expect(wrong.status).to.equal(403);
      expect((await book.get(approval.id))!.voters).to.deep.equal([]);
      expect((await post('/api/watches/check', {})).status).to.equal(401);
      expect(watchChecks).to.deep.equal([]);
    });

    it('approve and reject with the token', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const voted = await post(`/api/approvals/${approval.id}/approve`, { by: 'alice' }, auth);
      expect(voted.status).to.equal(202);
      expect(await voted.json()).to.include({ id: approval.id }).and.have.property('voters').that.deep.equals(['alice']);
      const listed = await (await fetch(`${server.url}/api/approvals`)).json() as Approval[];
      expect(listed.map((a) => a.id)).to.include(approval.id);
      expect((await post(`/api/approvals/${approval.id}/reject`, {}, auth)).status).to.equal(202);
      expect(await book.get(approval.id)).to.include({ rejected: true, rejectedBy: 'api' });
      expect((await post(`/api/approvals/${approval.id}/approve`, {}, auth)).status).to.equal(409);
      expect((await post('/api/approvals/a-0000000000/approve', {}, auth)).status).to.equal(404);
    });

    it('poll the watches now with the token', async () => {
      const res = await post('/api/watches/check', {}, { authorization: `Bearer ${TOKEN}` });
      expect(res.status).to.equal(202);
      expect(watchChecks).to.deep.equal([undefined]);
      const unknown = await post('/api/watches/check?watch=nope%5Emain', {}, { authorization: `Bearer ${TOKEN}` });
      expect(unknown.status).to.equal(404);
      expect(watchChecks).to.deep.equal([undefined]);
    });

    it('work from the page after signing in, and refuse a cross-site form', async () => {
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      const bad = await post('/login', `token=wrong&next=%2F`, form);
      expect(bad.status).to.equal(403);
      expect(bad.headers.get('set-cookie')).to.equal(null);
      const login = await post('/login', `token=${TOKEN}&name=Bob&next=%2F`, form);
      expect(login.status).to.equal(303);
      const cookies = login.headers.getSetCookie();
      expect(cookies.join('\n')).to.match(/^keelson_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict/).and.not.include(TOKEN);
      const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
      const cross = await post(`/api/approvals/${approval.id}/approve`, '', { ...form, cookie, origin: 'http://evil.example' });
      expect(cross.status).to.equal(403);
      const vote = await post(`/api/approvals/${approval.id}/approve`, '', { ...form, cookie, origin: server.url });
      expect(vote.status).to.equal(303);
      expect((await book.get(approval.id))!.voters).to.deep.equal(['Bob']);
      // the cookie is not a bearer token
      expect((await post(`/api/approvals/${approval.id}/approve`, {}, { authorization: `Bearer ${cookie.split('=')[1]}` })).status).to.equal(403);
    });

    it('are disabled without a configured token', async () => {
      const s = await start({ sources: { approvals: approvalBookSource(book) } });
      const res = await fetch(`${s.url}/api/approvals/${approval.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).to.equal(403);
      expect(await res.json()).to.deep.equal({ error: 'mutating endpoints are disabled: the server has no API token' });
    });
  });

  describe('read-only access', () => {
    it('can require the token for every view', async () => {
      const s = await start({ auth: { token: TOKEN, readOnlyPublic: false } });
      expect((await fetch(`${s.url}/api/runs`)).status).to.equal(401);
      expect((await fetch(`${s.url}/api/runs`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
      const page = await fetch(`${s.url}/runs/${finished.id}`, { redirect: 'manual' });
      expect(page.status).to.equal(303);
      expect(page.headers.get('location')).to.equal(`/login?next=${encodeURIComponent(`/runs/${finished.id}`)}`);
      expect((await fetch(`${s.url}/healthz`)).status).to.equal(200);
    });
  });

  describe('live logs', () => {
    it('stream appended lines as server-sent events until the run ends', async () => {
      const run = await seedRun(temp.store, { phase: 'running', log: 'line 1\n' });
      const res = await fetch(`${server.url}/api/runs/${run.id}/log`, { headers: { accept: 'text/event-stream' } });
      expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
      const reading = readEvents(res, (events) => events.some((e) => e.event === 'end'));
      await temp.store.appendLog(run.id, 'line 2\n');
      await new Promise((r) => setTimeout(r, 100));
      await temp.store.appendLog(run.id, 'line 3 ünï\n');
      await temp.store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'done');
      const events = await reading;
      const log = events.filter((e) => e.event === 'log');
      expect(log.map((e) => e.data).join('')).to.equal('line 1\nline 2\nline 3 ünï\n');
      expect(log.at(-1)!.id).to.equal(String(Buffer.byteLength('line 1\nline 2\nline 3 ünï\n')));
      expect(events.at(-1)).to.deep.equal({ event: 'end', data: '{"phase":"succeeded"}' });
    });

    it('end when the server closes, so shutdown does not wait for a build', async () => {
      const run = await seedRun(temp.store, { phase: 'running', log: 'busy\n' });
      const s = await start();
      const res = await fetch(`${s.url}/api/runs/${run.id}/log?follow=1`);
      const reading = readEvents(res, () => false);
      await s.close();
      const events = await reading;
      expect(events.map((e) => e.event)).to.deep.equal(['log']);
    });

    it('resume after the offset a reconnecting client already has', async () => {
      const res = await fetch(`${server.url}/api/runs/${finished.id}/log?follow=1`, { headers: { 'last-event-id': String('step 1\n'.length) } });
      const events = await readEvents(res, (e) => e.some((x) => x.event === 'end'));
      expect(events.filter((e) => e.event === 'log').map((e) => e.data).join('')).to.equal('step 2\n');
    });
  });

  describe('status page', () => {
    it('renders the overview without JavaScript, with a strict CSP', async () => {
      const res = await fetch(server.url);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-security-policy')).to.match(/default-src 'none'; style-src 'nonce-[^']+'; script-src 'nonce-/);
      // Long references may wrap after each '/' (<wbr>); the text is the same.
      const page = (await res.text()).replaceAll('<wbr>', '');
      expect(page).to.include(`href="/runs/${finished.id}"`).and.include('127.0.0.1:5000/team/app:main').and.include('id="watches"');
      expect(page).to.include('Sign in to vote');
    });

    it('renders a run with its timeline and full log', async () => {
      const page = await (await fetch(`${server.url}/runs/${running.id}`)).text();
      expect(page).to.include('id="timeline"').and.include('>started\n</pre>').and.include('EventSource');
      expect((await fetch(`${server.url}/runs/20990101-000000-000000`)).status).to.equal(404);
    });

    it('answers unknown paths with 404 and wrong methods with 405', async () => {
      expect((await fetch(`${server.url}/nope`)).status).to.equal(404);
      const res = await fetch(`${server.url}/healthz`, { method: 'DELETE' });
      expect(res.status).to.equal(405);
      expect(res.headers.get('allow')).to.equal('GET');
    });
  });
});
