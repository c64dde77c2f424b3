import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log/index.js';
import { createServer, signGitHubBody, type ListeningServer, type ServerOptions } from '../../../src/server/index.js';
import { openTempStore, RecordingPushSink, RecordingRegistry, seedRun, type TempStore } from './fixtures.js';

const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const HOOK_SECRET = `hook-${randomBytes(12).toString('hex')}`;
const REGISTRY_TOKEN = `reg-${randomBytes(12).toString('hex')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_BODY = { 'content-type': 'application/json' };

function pushBody(commit: string): string {
  return JSON.stringify({
    ref: 'refs/heads/main', after: commit, deleted: false,
    repository: { clone_url: 'https://github.com/team/app.git' },
  });
}

function signedPush(body: string, delivery: string): Record<string, string> {
  return { ...JSON_BODY, 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': signGitHubBody(HOOK_SECRET, body) };
}

const DISTRIBUTION_PUSH = JSON.stringify({
  events: [{ action: 'push', target: { repository: 'team/app', tag: '1.0.0', mediaType: 'application/vnd.oci.image.manifest.v1+json' }, request: { host: 'registry.example:5000' } }],
});

/** Lets the handlers' un-awaited work (checkNow, push) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A real pino logger whose JSON lines the test reads back. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: createLogger({ destination, pretty: false, level: 'debug' }), lines };
}

const WARN = 40;
const ERROR = 50;

describe('status server against requests a hostile client sends', function () {
  this.timeout(30_000);
  let temp: TempStore;
  const started: ListeningServer[] = [];
  let log: ReturnType<typeof capturingLogger>;

  async function start(options: Partial<ServerOptions> = {}): Promise<ListeningServer> {
    const s = await createServer({ store: temp.store, logger: log.logger, auth: { token: TOKEN }, ...options }).listen(0, '127.0.0.1');
    started.push(s);
    return s;
  }

  before(async () => {
    temp = await openTempStore();
    await seedRun(temp.store, { log: 'step\n' });
  });
  beforeEach(() => {
    log = capturingLogger();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.close()));
  });
  after(() => temp?.remove());

  describe('the page to go back to after signing in', () => {
    const offSite = [
      '/\t/evil.example', '/\n/evil.example', '/\r\n/evil.example', '\t//evil.example', '/\u0000/evil.example',
      '//evil.example', '/\\evil.example', '/\t\\evil.example', 'https://evil.example/', 'evil.example',
    ];
    for (const next of offSite) {
      it(`never leaves the site for next=${JSON.stringify(next)}`, async () => {
        const server = await start();
        const body = new URLSearchParams({ token: TOKEN, next }).toString();
        const res = await fetch(`${server.url}/login`, { method: 'POST', redirect: 'manual', headers: FORM, body });
        expect(res.status).to.equal(303);
        expect(res.headers.get('location')).to.equal('/');
        const page = await (await fetch(`${server.url}/login?${new URLSearchParams({ next })}`)).text();
        expect(page).to.include('name="next" value="/"');
      });
    }

    it('keeps a local path, query included', async () => {
      const server = await start();
      const body = new URLSearchParams({ token: TOKEN, next: '/runs/x?limit=5' }).toString();
      const res = await fetch(`${server.url}/login`, { method: 'POST', redirect: 'manual', headers: FORM, body });
      expect(res.headers.get('location')).to.equal('/runs/x?limit=5');
    });
  });

  describe('paths with bad percent-encoding', () => {
    for (const path of ['/runs/%E0%A4%A', '/api/runs/%ZZ', '/api/runs/%E0%A4%A/log', '/api/approvals/%C3%28/approve']) {
      it(`answer ${path} with 400 and log no error`, async () => {
        const server = await start();
        const method = path.endsWith('/approve') ? 'POST' : 'GET';
        const res = await fetch(`${server.url}${path}`, { method, redirect: 'manual', headers: { authorization: `Bearer ${TOKEN}` } });
        expect(res.status).to.equal(400);
        expect(await res.text()).to.include('malformed percent-encoding');
        expect(log.lines.filter((l) => l.level >= ERROR)).to.deep.equal([]);
      });
    }

    it('treats a path that starts with // as a path, not a host', async () => {
      const server = await start();
      const res = await fetch(`${server.url}//healthz`);
      expect(res.status).to.equal(404);
      expect(log.lines.filter((l) => l.level >= ERROR)).to.deep.equal([]);
    });
  });

  describe('GitHub deliveries', () => {
    let pushes: RecordingPushSink;
    let server: ListeningServer;
    beforeEach(async () => {
      pushes = new RecordingPushSink();
      server = await start({ githubWebhookSecret: HOOK_SECRET, sources: { gitPush: pushes } });
    });
    const deliver = (body: string, headers: Record<string, string>): Promise<Response> =>
      fetch(`${server.url}/webhooks/github`, { method: 'POST', headers, body });

    it('act once per delivery: a replay, with the same or a new delivery id, is 200 and does nothing', async () => {
      const body = pushBody('a1'.repeat(20));
      const first = await deliver(body, signedPush(body, 'delivery-1'));
      expect(first.status).to.equal(202);
      for (let i = 0; i < 20; i++) {
        const again = await deliver(body, signedPush(body, i % 2 === 0 ? 'delivery-1' : `forged-id-${i}`));
        expect(again.status).to.equal(200);
        expect(await again.json()).to.include({ replayed: true });
      }
      await settle();
      expect(pushes.events.map((e) => e.commit)).to.deep.equal(['a1'.repeat(20)]);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).to.match(/keelson_webhook_deliveries_total\{source="github",result="replayed"\} [1-9]/);
    });

    it('act on a new delivery, and a forged delivery does not use up its id', async () => {
      const body = pushBody('b2'.repeat(20));
      const forged = await deliver(body, { ...signedPush(body, 'delivery-2'), 'x-hub-signature-256': signGitHubBody('wrong', body) });
      expect(forged.status).to.equal(401);
      expect((await deliver(body, signedPush(body, 'delivery-2'))).status).to.equal(202);
      const next = pushBody('c3'.repeat(20));
      expect((await deliver(next, signedPush(next, 'delivery-3'))).status).to.equal(202);
      await settle();
      expect(pushes.events.map((e) => e.commit)).to.deep.equal(['b2'.repeat(20), 'c3'.repeat(20)]);
    });

    it('log one line for a flood of bad signatures, and the count when the server stops', async () => {
      const body = pushBody('d4'.repeat(20));
      const floods = 60;
      for (let i = 0; i < floods; i += 20) {
        const batch = Array.from({ length: 20 }, (_, j) => deliver(body, { ...signedPush(body, `flood-${i + j}`), 'x-hub-signature-256': signGitHubBody(`wrong-${j}`, body) }));
        expect((await Promise.all(batch)).map((r) => r.status)).to.deep.equal(Array(20).fill(401));
      }
      const warned = (): LogLine[] => log.lines.filter((l) => l.level === WARN && l.msg === 'github webhook with a bad signature');
      expect(warned()).to.have.length(1);
      await Promise.all(started.splice(0).map((s) => s.close()));
      expect(warned()).to.have.length(2);
      expect(warned()[1]).to.include({ repeated: floods - 1 });
      expect(pushes.events).to.deep.equal([]);
    });
  });

  describe('registry webhooks with a shared token', () => {
    let registry: RecordingRegistry;
    let server: ListeningServer;
    beforeEach(async () => {
      registry = new RecordingRegistry();
      server = await start({ registryWebhookToken: REGISTRY_TOKEN, sources: { registry } });
    });
    const notify = (path: string, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { ...JSON_BODY, ...headers }, body: DISTRIBUTION_PUSH });

    const refused: Array<[string, string, Record<string, string>]> = [
      ['no token', '/webhooks/registry', {}],
      ['a wrong bearer token', '/webhooks/registry', { authorization: 'Bearer nope' }],
      ['a wrong query token', '/webhooks/registry?token=nope', {}],
      ['the token under another scheme', '/webhooks/registry', { authorization: `Basic ${REGISTRY_TOKEN}` }],
    ];
    for (const [what, path, headers] of refused) {
      it(`refuse ${what} with 401 and check nothing`, async () => {
        const res = await notify(path, headers);
        expect(res.status).to.equal(401);
        await settle();
        expect(registry.calls).to.deep.equal([]);
      });
    }

    const accepted: Array<[string, string, Record<string, string>]> = [
      ['Authorization: Bearer (Docker distribution, Harbor)', '/webhooks/registry', { authorization: `Bearer ${REGISTRY_TOKEN}` }],
      ['Authorization: Token', '/webhooks/registry', { authorization: `Token ${REGISTRY_TOKEN}` }],
      ['?token= (Docker Hub)', `/webhooks/registry?token=${REGISTRY_TOKEN}`, {}],
    ];
    for (const [how, path, headers] of accepted) {
      it(`accept the token given as ${how}`, async () => {
        const res = await notify(path, headers);
        expect(res.status).to.equal(202);
        await settle();
        expect(registry.calls).to.deep.equal(['registry.example:5000/team/app']);
      });
    }

    it('keep working without a token when none is configured', async () => {
      const open = await start({ sources: { registry } });
      const res = await fetch(`${open.url}/webhooks/registry`, { method: 'POST', headers: JSON_BODY, body: DISTRIBUTION_PUSH });
      expect(res.status).to.equal(202);
    });

    it('never log the token given in the query', async () => {
      await notify(`/webhooks/registry?token=${REGISTRY_TOKEN}`);
      await notify('/webhooks/registry?token=not-it-either');
      expect(JSON.stringify(log.lines)).not.to.include(REGISTRY_TOKEN).and.not.to.include('not-it-either');
    });
  });
});
