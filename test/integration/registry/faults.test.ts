import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { Duration } from '../../../src/domain/index.js';
import { RegistryClient, RegistryRateLimitedError, RegistryResponseError } from '../../../src/registry/index.js';
import { pushImage } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/**
 * A fault-injecting proxy in front of the real registry (the toxiproxy idea): the next answers
 * queued in `faults` replace the registry's, everything else is forwarded unchanged. Registries
 * do not rate-limit on demand, so this is how 429/503 handling meets a real registry.
 */
interface Fault {
  readonly status: number;
  readonly headers?: Record<string, string>;
}

async function startFaultProxy(target: string): Promise<{ host: string; faults: Fault[]; seen: string[]; server: Server }> {
  const faults: Fault[] = [];
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const fault = faults.shift();
    if (fault) {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
        .end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: `injected ${fault.status}` }] }));
      return;
    }
    void (async () => {
      const answer = await request(`${target}${req.url}`, {
        method: req.method as 'GET' | 'HEAD',
        headers: { accept: req.headers.accept ?? '*/*' },
      });
      const body = Buffer.from(await answer.body.arrayBuffer());
      const headers: Record<string, string> = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42' };
      for (const name of ['content-type', 'docker-content-digest', 'link', 'content-length']) {
        const value = answer.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      res.writeHead(answer.statusCode, headers).end(req.method === 'HEAD' ? undefined : body);
    })().catch((error: Error) => res.writeHead(502).end(error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { host: `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, faults, seen, server };
}

describe('RegistryClient retries against a real registry behind a fault-injecting proxy', function () {
  this.timeout(120_000);
  let registry: RunningRegistry | undefined;
  let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined;
  let digest: string;
  let client: RegistryClient;

  before(async () => {
    registry = await startRegistry();
    digest = await pushImage(registry, 'team/flaky', 'v1', { content: 'flaky v1' });
    proxy = await startFaultProxy(registry.url);
  });
  after(async () => {
    if (proxy) {
      proxy.server.closeAllConnections();
      await new Promise((resolve) => proxy!.server.close(resolve));
    }
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
