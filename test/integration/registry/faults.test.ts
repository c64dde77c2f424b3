import { expect } from 'chai';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duration } from '../../../src/domain/index.js';
import { RegistryClient, RegistryRateLimitedError, RegistryResponseError } from '../../../src/registry/index.js';
import { pushImage } from '../../support/images.js';
import { startRegistryProxy, type RegistryProxy } from '../../support/registry-proxy.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

describe('RegistryClient retries against a real registry behind a fault-injecting proxy', function () {
  this.timeout(120_000);
  let registry: RunningRegistry | undefined;
  let proxy: RegistryProxy | undefined;
  let digest: string;
  let client: RegistryClient;

  before(async () => {
    registry = await startRegistry();
    digest = await pushImage(registry, 'team/flaky', 'v1', { content: 'flaky v1' });
    proxy = await startRegistryProxy(registry.url);
  });
  after(async () => {
    await proxy?.close();
    await registry?.stop();
  });
  // A client per test: a 429 that asks for an hour keeps that client away from the registry for an hour.
  beforeEach(() => {
    proxy!.faults.length = 0;
    proxy!.seen.length = 0;
    client = new RegistryClient({ maxRetries: 2, retryDelay: Duration.ofMilliseconds(10), maxRetryAfter: Duration.ofSeconds(5) });
  });
  afterEach(() => client.close());

  it('waits out a 429 with Retry-After in seconds, then answers', async () => {
    proxy!.faults.push({ status: 429, headers: { 'retry-after': '1' } });
    expect(await client.manifestDigest(`${proxy!.host}/team/flaky`, 'v1')).to.equal(digest);
    expect(proxy!.seen).to.have.lengthOf(2);
  });

  it('waits out a 429 with Retry-After as an HTTP date', async () => {
    proxy!.faults.push({ status: 429, headers: { 'retry-after': new Date(Date.now() + 1000).toUTCString() } });
    expect(await client.listTags(`${proxy!.host}/team/flaky`)).to.deep.equal(['v1']);
    expect(proxy!.seen).to.have.lengthOf(2);
  });

  it('fails at once with RegistryRateLimitedError when asked to wait longer than maxRetryAfter', async () => {
    proxy!.faults.push({ status: 429, headers: { 'retry-after': '3600' } });
    const error = await client.manifestDigest(`${proxy!.host}/team/flaky`, 'v1').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RegistryRateLimitedError);
    expect((error as RegistryRateLimitedError).retryAfterMs).to.equal(3_600_000);
    expect((error as Error).message).to.include(proxy!.host).and.include('team/flaky').and.include('3600 s');
    expect(proxy!.seen).to.have.lengthOf(1);

    // The registry said an hour: nothing more is sent to it, for any repository, until then.
    const again = await client.listTags(`${proxy!.host}/team/other`).catch((e: unknown) => e);
    expect(again).to.be.instanceOf(RegistryRateLimitedError);
    expect((again as RegistryRateLimitedError).retryAfterMs).to.be.within(3_500_000, 3_600_000);
    expect(proxy!.seen).to.have.lengthOf(1);
  });

  it('retries 5xx with backoff and succeeds within maxRetries', async () => {
    proxy!.faults.push({ status: 503 }, { status: 502 });
    expect(await client.manifestDigest(`${proxy!.host}/team/flaky`, 'v1')).to.equal(digest);
    expect(proxy!.seen).to.have.lengthOf(3);
  });

  it('gives up after maxRetries with RegistryResponseError carrying the registry\'s message', async () => {
    proxy!.faults.push({ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 });
    const error = await client.listTags(`${proxy!.host}/team/flaky`).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RegistryResponseError);
    expect((error as RegistryResponseError).status).to.equal(500);
    expect((error as Error).message).to.include('after 3 attempts').and.include('injected 500');
    expect(proxy!.seen).to.have.lengthOf(3);
  });

  it('records the ratelimit headers the registry sent', async () => {
    await client.listTags(`${proxy!.host}/team/flaky`);
    expect(client.rateLimit(proxy!.host)).to.include({ limit: 100, remaining: 42 });
  });
});

describe('RegistryClient against a registry host that accepts connections and never answers', function () {
  this.timeout(60_000);
  let silent: Server | undefined;
  let host: string;
  const sockets = new Set<Socket>();

  before(async () => {
    silent = createServer((socket) => { sockets.add(socket); }); // takes the connection, never speaks TLS or HTTP
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    if (silent) silent.close(() => resolve());
    else resolve();
  }));

  // undici leaves a TLS handshake in progress running when the request's signal aborts; the
  // loopback HTTPS probe hangs there, so the watcher's per-check deadline must not wait for it.
  it('gives up when its signal aborts, also while the HTTPS probe hangs in the handshake', async () => {
    const client = new RegistryClient({});
    try {
      const started = Date.now();
      const error = await client.listTags(`${host}/team/app`, { signal: AbortSignal.timeout(300) }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(Error).with.property('name', 'TimeoutError');
      expect(Date.now() - started, 'settled at the abort, not at the 10 s connect timeout').to.be.below(5_000);
    } finally {
      await client.close();
    }
  });
});
