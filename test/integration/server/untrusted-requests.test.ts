import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log/index.js';
import { createServer, type ListeningServer, type ServerOptions } from '../../../src/server/index.js';
import { openTempStore, seedRun, type TempStore } from './fixtures.js';

const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

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
});
