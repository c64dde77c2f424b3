import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parsePolicy } from '../../../src/policy/index.js';
import { RegistryClient } from '../../../src/registry/index.js';
import { RegistryWatcher, type RegistryChange, type WatchTarget } from '../../../src/registry-watch/index.js';
import { FileStore } from '../../../src/store/index.js';
import { pushImage } from '../../support/images.js';
import { freePort, startRegistry, type RunningRegistry } from '../../support/registry.js';

describe('RegistryWatcher against a real docker-registry', function () {
  this.timeout(300_000);
  let registry: RunningRegistry | undefined;
  let stateDir: string | undefined;
  let client: RegistryClient;
  const watchers: RegistryWatcher[] = [];

  before(async () => {
    registry = await startRegistry();
    stateDir = await mkdtemp(join(tmpdir(), 'keelson-registry-watch-'));
    client = new RegistryClient();
  });
  after(async () => {
    await Promise.all(watchers.map((w) => w.stop()));
    await client?.close();
    await registry?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  /** A watcher on the real registry, with a file store in `dir`, collecting its events. */
  async function watcher(dir: string): Promise<{ watcher: RegistryWatcher; events: RegistryChange[] }> {
    const store = await FileStore.open({ stateDir: join(stateDir!, dir) });
    const w = new RegistryWatcher({ reader: client, store });
    watchers.push(w);
    const events: RegistryChange[] = [];
    w.subscribe((change) => {
      events.push(change);
    });
    return { watcher: w, events };
  }

  function target(id: string, repository: string, current: string, policy: string): WatchTarget {
    return { id, repository: `${registry!.host}/${repository}`, current, policy: parsePolicy(policy) };
  }

  it('fires exactly once for a new digest and never for a re-push of the same content', async () => {
    const repository = `${registry!.host}/digest/app`;
    const first = await pushImage(registry!, 'digest/app', 'latest', { content: 'watch one' });
    const { watcher: w, events } = await watcher('digest');
    w.addTarget(target('web', 'digest/app', 'latest', 'force'));
    w.addTarget(target('worker', 'digest/app', 'latest', 'force'));

    await w.checkNow();
    expect(events, 'the first observation records a baseline').to.deep.equal([]);

    expect(await pushImage(registry!, 'digest/app', 'latest', { content: 'watch one' })).to.equal(first);
    await w.checkNow();
    expect(events, 'a re-push of the same content is not a change').to.deep.equal([]);

    const second = await pushImage(registry!, 'digest/app', 'latest', { content: 'watch two' });
    await w.checkNow(repository);
    await w.checkNow(repository);
    expect(events).to.deep.equal([
      { targetIds: ['web', 'worker'], repository, oldTag: 'latest', newTag: 'latest', oldDigest: first, newDigest: second },
    ]);
  });

  it('picks the tag the policy allows from the real tag list', async () => {
    const repository = `${registry!.host}/tags/app`;
    for (const tag of ['1.0.0', '1.1.0', '1.9.0', '2.0.0-rc.1', 'build-9']) {
      await pushImage(registry!, 'tags/app', tag, { content: 'tags base' });
    }
    const { watcher: w, events } = await watcher('tags');
    w.addTarget(target('minor', 'tags/app', '1.0.0', 'minor'));
    w.addTarget(target('all', 'tags/app', '1.9.0', 'all'));
    w.addTarget(target('glob', 'tags/app', 'build-9', 'glob:build-*'));

    await w.checkNow();
    expect(events).to.have.deep.members([
      { targetIds: ['minor'], repository, oldTag: '1.0.0', newTag: '1.9.0' },
      { targetIds: ['all'], repository, oldTag: '1.9.0', newTag: '2.0.0-rc.1' },
    ]);

    events.length = 0;
    await pushImage(registry!, 'tags/app', '1.10.0', { content: 'tags base' });
    await pushImage(registry!, 'tags/app', 'build-10', { content: 'tags base' });
    await w.checkNow();
    expect(events).to.have.deep.members([
      { targetIds: ['minor'], repository, oldTag: '1.9.0', newTag: '1.10.0' },
      { targetIds: ['glob'], repository, oldTag: 'build-9', newTag: 'build-10' },
    ]);
    expect(w.status().map((job) => job.key)).to.deep.equal([repository]);
  });

  it('fires nothing after a restart alone and once for a push made while it was down', async () => {
    const repository = `${registry!.host}/restart/app`;
    const first = await pushImage(registry!, 'restart/app', 'main', { content: 'restart one' });
    const before = await watcher('restart');
    before.watcher.addTarget(target('app', 'restart/app', 'main', 'force'));
    await before.watcher.checkNow();
    await before.watcher.stop();

    const restarted = await watcher('restart');
    restarted.watcher.addTarget(target('app', 'restart/app', 'main', 'force'));
    await restarted.watcher.checkNow();
    await restarted.watcher.stop();
    expect(restarted.events).to.deep.equal([]);

    const second = await pushImage(registry!, 'restart/app', 'main', { content: 'restart two' });
    const after = await watcher('restart');
    after.watcher.addTarget(target('app', 'restart/app', 'main', 'force'));
    await after.watcher.checkNow();
    await after.watcher.checkNow();
    expect(after.events).to.deep.equal([
      { targetIds: ['app'], repository, oldTag: 'main', newTag: 'main', oldDigest: first, newDigest: second },
    ]);
  });

  it('keeps the other jobs running while a repository fails', async () => {
    await pushImage(registry!, 'healthy/app', '1.1.0', { content: 'healthy' });
    const { watcher: w, events } = await watcher('failures');
    w.addTarget(target('missing', 'missing/app', '1.0.0', 'minor'));
    w.addTarget(target('missing-tag', 'healthy/app', 'nope', 'force'));
    w.addTarget(target('healthy', 'healthy/app', '1.0.0', 'minor'));
    const nobody = `127.0.0.1:${await freePort()}`; // nothing listens there
    w.addTarget({ id: 'unreachable', repository: `${nobody}/team/app`, current: '1.0.0', policy: parsePolicy('minor') });

    await w.checkNow();
    expect(w.status()).to.have.length(4);
    expect(w.status().every((job) => job.lastCheckedAt !== undefined)).to.equal(true);
    expect(events.map((e) => e.targetIds)).to.deep.equal([['healthy']]);
    const failing = w.status().filter((job) => job.failures > 0);
    expect(failing.map((job) => job.key)).to.have.members([
      `${registry!.host}/missing/app`, `${registry!.host}/healthy/app:nope`, `${nobody}/team/app`,
    ]);
    for (const job of failing) expect(job.lastError).to.include(job.repository.split('/')[0]);
  });
});
