import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisStore, createStore, type Store } from '../../../src/store/index.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { describeStoreContract, newRun } from './contract.js';

describe('RedisStore against a real redis-server', function () {
  this.timeout(30_000);
  let redis: RunningRedis | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  // Each fixture gets its own key prefix on the one server, and removes its keys afterwards.
  describeStoreContract('RedisStore', async () => {
    const keyPrefix = `t-${randomBytes(4).toString('hex')}:`;
    const opened: Store[] = [];
    return {
      async open() {
        const store = await RedisStore.connect({ url: redis!.url, keyPrefix });
        opened.push(store);
        return store;
      },
      async dispose() {
        for (const store of opened) await store.close();
        const raw = new Redis(redis!.url);
        const keys = await raw.keys(`${keyPrefix}*`);
        if (keys.length > 0) await raw.del(...keys);
        await raw.quit();
      },
    };
  });

  it('keeps every key under its prefix, and prefixes apart', async () => {
    const one = await RedisStore.connect({ url: redis!.url, keyPrefix: 'one:' });
    const two = await RedisStore.connect({ url: redis!.url, keyPrefix: 'two:' });
    const raw = new Redis(redis!.url);
    try {
      const run = await one.createRun(newRun());
      await one.appendLog(run.id, 'x');
      await one.setState('k', 1);
      expect(await two.getRun(run.id)).to.equal(undefined);
      expect(await two.listRuns()).to.deep.equal([]);
      expect(await two.getState('k')).to.equal(undefined);
      const keys = await raw.keys('*');
      expect(keys.length).to.be.greaterThan(0);
      for (const key of keys) expect(key).to.match(/^one:/);
    } finally {
      await raw.flushall();
      await raw.quit();
      await one.close();
      await two.close();
    }
  });

  it('uses keelson: as the default prefix, through createStore', async () => {
    const store = await createStore({ redisUrl: redis!.url });
    const raw = new Redis(redis!.url);
    try {
      expect(store.description).to.equal(`redis://127.0.0.1:${redis!.port}/0`);
      await store.setState('watch:a^main', { commit: 'abc' });
      expect(await raw.get('keelson:state:watch:a^main')).to.equal('{"commit":"abc"}');
    } finally {
      await raw.flushall();
      await raw.quit();
      await store.close();
    }
  });

  it('fails with a clear error when nothing listens', async () => {
    const error = await RedisStore.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(error).to.have.property('code', 'KEELSON_STORE_UNAVAILABLE');
    expect((error as Error).message).to.contain('redis://127.0.0.1:1/0');
  });

  it('rejects URLs that are not redis URLs with exit 2', async () => {
    for (const url of ['localhost:6379', 'http://localhost:6379', 'redis://localhost/abc']) {
      const error = await createStore({ redisUrl: url }).catch((e: unknown) => e);
      expect(error, url).to.have.property('code', 'KEELSON_STORE_CONFIG');
      expect(error, url).to.have.property('exitCode', 2);
    }
  });
});

describe('RedisStore with a password', function () {
  this.timeout(30_000);
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let redis: RunningRedis | undefined;
  before(async () => {
    redis = await startRedis({ password });
  });
  after(async () => {
    await redis?.stop();
  });

  it('connects, and neither its description nor its logs show the password', async () => {
    const store = await RedisStore.connect({ url: `${redis!.url}/2` });
    try {
      expect(store.description).to.equal(`redis://127.0.0.1:${redis!.port}/2`);
      const run = await store.createRun(newRun({ message: `connected to ${redis!.url}` }));
      await store.appendLog(run.id, `using ${password} and ${redis!.url}\n`);
      const { text } = await store.readLog(run.id);
      expect(text).not.to.contain(password);
      expect(JSON.stringify(await store.getRun(run.id))).not.to.contain(password);
    } finally {
      await store.close();
    }
  });

  it('names the server but not the password when the password is wrong', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const error = await RedisStore.connect({ url: `redis://:${wrong}@127.0.0.1:${redis!.port}` }).catch((e: unknown) => e);
    expect(error).to.have.property('code', 'KEELSON_STORE_UNAVAILABLE');
    expect((error as Error).message).to.contain(`redis://127.0.0.1:${redis!.port}/0`);
    expect((error as Error).message).not.to.contain(wrong);
  });
});
