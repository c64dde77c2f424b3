import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type ListeningServer, type ServerOptions, type ServerStore } from '../../../src/server/index.js';
import { SessionBook } from '../../../src/server/sessions.js';
import { RedisStore } from '../../../src/store/index.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { openTempStore, type TempStore } from './fixtures.js';

const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Signs in with the form; returns the Set-Cookie header and the session id in it. */
async function signIn(url: string, name = 'Ada'): Promise<{ setCookie: string; id: string }> {
  const res = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: FORM, body: new URLSearchParams({ token: TOKEN, name, next: '/' }).toString() });
  expect(res.status).to.equal(303);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('keelson_session='));
  expect(setCookie, 'a session cookie').to.be.a('string');
  return { setCookie: setCookie!, id: /^keelson_session=([^;]*)/.exec(setCookie!)![1]! };
}

/** POST /api/watches/check as the holder of a session cookie: 202 when it is live, 401 when not. */
async function checkAs(url: string, id: string): Promise<number> {
  const res = await fetch(`${url}/api/watches/check`, { method: 'POST', redirect: 'manual', headers: { cookie: `keelson_session=${id}`, origin: url } });
  return res.status;
}

describe('sign-in sessions', function () {
  this.timeout(30_000);
  let temp: TempStore;
  const started: ListeningServer[] = [];
  const checks: Array<string | undefined> = [];

  async function start(store: ServerStore, options: Partial<ServerOptions> = {}): Promise<ListeningServer> {
    const s = await createServer({
      store, auth: { token: TOKEN }, sources: { watches: { watches: () => [], checkNow: (key) => checks.push(key) } }, ...options,
    }).listen(0, '127.0.0.1');
    started.push(s);
    return s;
  }

  before(async () => {
    temp = await openTempStore();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.close()));
  });
  after(() => temp?.remove());

  it('give each sign-in its own random id', async () => {
    const server = await start(temp.store);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await signIn(server.url)).id);
    expect(new Set(ids).size).to.equal(5);
    for (const id of ids) {
      expect(id).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(await checkAs(server.url, id)).to.equal(202);
    }
  });

  it('end at sign-out: the same cookie value no longer works, the other sessions do', async () => {
    const server = await start(temp.store);
    const mine = await signIn(server.url);
    const other = await signIn(server.url);
    const out = await fetch(`${server.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `keelson_session=${mine.id}` } });
    expect(out.status).to.equal(303);
    expect(out.headers.get('set-cookie')).to.match(/^keelson_session=; .*Max-Age=0/);
    expect(await checkAs(server.url, mine.id)).to.equal(401);
    expect(await checkAs(server.url, other.id)).to.equal(202);
  });

  it('are cookies a script cannot read, sent only to this site, Secure when the public URL is https', async () => {
    const plain = await start(temp.store);
    expect((await signIn(plain.url)).setCookie).to.match(/; Path=\/; HttpOnly; SameSite=Strict; Max-Age=604800$/);
    const behindTls = await start(temp.store, { publicUrl: 'https://keelson.example' });
    expect((await signIn(behindTls.url)).setCookie).to.match(/; HttpOnly; SameSite=Strict; Secure; Max-Age=604800$/);
  });

  it('record the name given at sign-in with a vote', async () => {
    const votes: string[] = [];
    const server = await start(temp.store, {
      sources: {
        approvals: {
          pending: async () => [],
          approve: async (id, by) => {
            votes.push(by);
            return { id, workload: { kind: 'Deployment', namespace: 'default', name: 'web' }, changes: [], votesRequired: 1, voters: [by], createdAt: '', deadline: '' };
          },
          reject: async () => { throw new Error('not used'); },
        },
      },
    });
    const { id } = await signIn(server.url, 'Grace');
    // A cookie keelson_user from an older version is not who votes.
    const res = await fetch(`${server.url}/api/approvals/a-1/approve`, { method: 'POST', redirect: 'manual', headers: { ...FORM, cookie: `keelson_session=${id}; keelson_user=Mallory`, origin: server.url } });
    expect(res.status).to.equal(303);
    expect(votes).to.deep.equal(['Grace']);
  });

  it('keep a digest of the id in the store, never the id', async () => {
    const server = await start(temp.store);
    const { id } = await signIn(server.url);
    const dir = join(temp.dir, 'state');
    const files = await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), 'utf8')));
    expect(files.join('\n')).to.include('expiresAt').and.not.include(id);
  });

  it('expire on the server whatever the cookie says', async () => {
    let now = Date.now();
    const book = new SessionBook({ state: temp.store, maxAgeMs: 60_000, now: () => now });
    const id = await book.create('Ada');
    expect(await book.lookup(id)).to.include({ name: 'Ada' });
    now += 59_999;
    expect(await book.lookup(id)).to.not.equal(undefined);
    now += 1;
    expect(await book.lookup(id)).to.equal(undefined);
    now -= 10_000;
    expect(await book.lookup(id), 'an expired session is removed, not only hidden').to.equal(undefined);
  });

  describe('with replicas sharing one Redis store', () => {
    let redis: RunningRedis;
    const stores: RedisStore[] = [];
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await redis?.stop();
    });

    it('a sign-in on one replica works on the other, and a sign-out on either ends it on both', async () => {
      const keyPrefix = `keelson-sessions-${randomBytes(4).toString('hex')}:`;
      for (let i = 0; i < 2; i++) stores.push(await RedisStore.connect({ url: redis.url, keyPrefix }));
      const [a, b] = [await start(stores[0]!), await start(stores[1]!)];
      const { id } = await signIn(a.url);
      expect(await checkAs(b.url, id)).to.equal(202);
      await fetch(`${b.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `keelson_session=${id}` } });
      expect(await checkAs(a.url, id)).to.equal(401);
      expect(await checkAs(b.url, id)).to.equal(401);
    });
  });
});
