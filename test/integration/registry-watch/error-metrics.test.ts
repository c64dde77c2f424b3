/**
 * keelson_registry_polls_total and keelson_registry_errors_total count what they name: checks of
 * a real docker-registry, and each failed check by the kind an operator alerts on — 401 (auth),
 * 429 (rate_limited), 5xx (server), no answer in time (timeout) — answered through a
 * fault-injecting proxy in front of the registry, or by a port that accepts and never answers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Duration } from '../../../src/domain/index.js';
import { registryErrorsTotal, registryPollsTotal } from '../../../src/metrics/index.js';
import { parsePolicy } from '../../../src/policy/index.js';
import { RegistryClient } from '../../../src/registry/index.js';
import { RegistryWatcher } from '../../../src/registry-watch/index.js';
import { FileStore } from '../../../src/store/index.js';
import { pushImage } from '../../support/images.js';
import { startRegistryProxy, type RegistryProxy } from '../../support/registry-proxy.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

async function counter(metric: typeof registryErrorsTotal | typeof registryPollsTotal, labels: Record<string, string>): Promise<number> {
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))?.value ?? 0;
}

describe('registry check metrics against a real registry', function () {
  this.timeout(120_000);
  let registry: RunningRegistry | undefined;
  let proxy: RegistryProxy | undefined;
  let silent: Server | undefined;
  const sockets = new Set<Socket>();
  let dir: string | undefined;
  let store: FileStore | undefined;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    registry = await startRegistry();
    await pushImage(registry, 'team/metered', 'v1', { content: 'metered v1' });
    proxy = await startRegistryProxy(registry.url);
    // Accepts connections and never answers: a registry that hangs.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', () => resolve()));
    dir = await mkdtemp(join(tmpdir(), 'keelson-registry-metrics-'));
    store = await FileStore.open({ stateDir: dir });
  });
  after(async () => {
    for (const stop of stops) await stop();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await proxy?.close();
    await registry?.stop();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A watcher of `host/team/metered:v1` with a client that does not retry; `timeout` for both. */
  function watch(host: string, timeout = Duration.ofSeconds(30)): { check: () => Promise<unknown> } {
    const client = new RegistryClient({ maxRetries: 0, maxRetryAfter: Duration.ofSeconds(1), timeout });
    const watcher = new RegistryWatcher({ reader: client, store: store!, checkTimeout: timeout });
    stops.push(async () => {
      await watcher.stop();
      await client.close();
    });
    const repository = `${host}/team/metered`;
    watcher.addTarget({ id: `metered-${host}`, repository, current: 'v1', policy: parsePolicy('force'), matchTag: true });
    return { check: () => watcher.checkNow(repository) };
  }

  it('counts a good check as ok and each failure by kind: auth, rate_limited, server, timeout', async () => {
    const { check } = watch(proxy!.host);
    const ok = await counter(registryPollsTotal, { result: 'ok' });
    await check();
    expect(await counter(registryPollsTotal, { result: 'ok' })).to.equal(ok + 1);

    const cases: Array<[number, string]> = [[401, 'auth'], [503, 'server'], [429, 'rate_limited']];
    for (const [status, kind] of cases) {
      const errors = await counter(registryPollsTotal, { result: 'error' });
      const before = await counter(registryErrorsTotal, { kind });
      proxy!.faults.push({ status, ...(status === 429 ? { headers: { 'retry-after': '3600' } } : {}) });
      await check();
      expect(await counter(registryErrorsTotal, { kind }), `HTTP ${status}`).to.equal(before + 1);
      expect(await counter(registryPollsTotal, { result: 'error' })).to.equal(errors + 1);
    }

    const hanging = watch(`127.0.0.1:${(silent!.address() as { port: number }).port}`, Duration.ofSeconds(1));
    const timeouts = await counter(registryErrorsTotal, { kind: 'timeout' });
    await hanging.check();
    expect(await counter(registryErrorsTotal, { kind: 'timeout' })).to.equal(timeouts + 1);
  });
});
