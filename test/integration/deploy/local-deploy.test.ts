import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { PipelineSpec } from '../../../src/config/index.js';
import { DeployReason, LocalDeployLoop, type LocalDeployLoopOptions } from '../../../src/deploy/index.js';
import { newRunId } from '../../../src/domain/index.js';
import { parseDockerConfig, RegistryClient } from '../../../src/registry/index.js';
import { FileStore, RunReason, type RunRecord, type Store } from '../../../src/store/index.js';
import { buildahInvocation, pushImage } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

const SHOW_CONTENT = ['/bin/busybox', 'sh', '-c', 'cat /content; echo; echo deployed'];

describe('LocalDeployLoop against a real docker-registry and buildah', function () {
  this.timeout(300_000);
  let registry: RunningRegistry | undefined;
  let dir: string | undefined;
  let client: RegistryClient;
  const stores: Store[] = [];
  const loops: LocalDeployLoop[] = [];

  before(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'keelson-deploy-'));
    client = new RegistryClient();
  });
  after(async () => {
    await Promise.all(loops.map((loop) => loop.stop()));
    await Promise.all(stores.map((store) => store.close()));
    await client?.close();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function openStore(name: string): Promise<Store> {
    const store = await FileStore.open({ stateDir: join(dir!, name) });
    stores.push(store);
    return store;
  }

  function loop(store: Store, image: string, deploy: Record<string, unknown>, extra: Partial<LocalDeployLoopOptions> = {}): LocalDeployLoop {
    const created = new LocalDeployLoop({
      store,
      registryReader: client,
      pipeline: PipelineSpec.parse({ build: { image }, deploy }),
      registry: registry!.host,
      tags: ['main'],
      env: buildahInvocation().env,
      ...extra,
    });
    loops.push(created);
    return created;
  }

  async function deployRuns(store: Store): Promise<RunRecord[]> {
    return (await store.listRuns({ limit: 1000 })).filter((run) => run.kind === 'deploy');
  }

  /** A build run as the pipeline runner records it, for a digest pushed by the test. */
  async function recordBuildRun(store: Store, watch: string, commit: string, ref: string, digest: string): Promise<RunRecord> {
    const id = newRunId();
    await store.createRun({ id, kind: 'build', watch, repo: '/src/app', branch: 'main', commit, phase: 'running', reason: RunReason.Started, message: 'building' });
    return store.transitionRun(id, 'succeeded', RunReason.StepsSucceeded, 'pushed', { image: { ref, digest, pushed: true } });
  }

  it('deploys a new digest once, with its log; a first sight is the baseline and a re-push deploys nothing', async () => {
    const store = await openStore('once');
    const deployer = loop(store, 'once/app', { command: SHOW_CONTENT });
    const ref = `${registry!.host}/once/app:main`;

    await pushImage(registry!, 'once/app', 'main', { content: 'deploy one' });
    expect((await deployer.pollOnce()).runs, 'an image nobody built here is the baseline').to.deep.equal([]);

    const second = await pushImage(registry!, 'once/app', 'main', { content: 'deploy two' });
    const { runs } = await deployer.checkNow();
    expect(runs).to.have.length(1);
    const run = runs[0]!;
    expect(run).to.include({ kind: 'deploy', phase: 'succeeded', reason: RunReason.StepsSucceeded, watch: `image:${ref}`, commit: '', branch: 'main' });
    expect(run.image).to.deep.equal({ ref, digest: second, pushed: true });
    const { text } = await store.readLog(run.id);
    expect(text).to.include('deploy two').and.include('deployed');
    expect(text).to.include(`${registry!.host}/once/app@${second}`);

    expect(await pushImage(registry!, 'once/app', 'main', { content: 'deploy two' })).to.equal(second);
    expect((await deployer.checkNow()).runs, 'a re-push of the same content').to.deep.equal([]);
    expect(await deployRuns(store)).to.have.length(1);
    expect(await store.getState(`deployed:${second}`)).to.include({ runId: run.id });
  });

  it('deploys a digest pushed while keelson was down once after a restart; a restart alone deploys nothing', async () => {
    const store = await openStore('restart');
    const first = loop(store, 'restart/app', { command: SHOW_CONTENT });
    await pushImage(registry!, 'restart/app', 'main', { content: 'restart one' });
    await first.pollOnce();
    await first.stop();

    const again = loop(store, 'restart/app', { command: SHOW_CONTENT });
    expect((await again.pollOnce()).runs, 'a restart alone').to.deep.equal([]);
    await again.stop();

    const pushed = await pushImage(registry!, 'restart/app', 'main', { content: 'restart two' });
    const after = loop(store, 'restart/app', { command: SHOW_CONTENT });
    const { runs } = await after.pollOnce();
    expect(runs.map((run) => [run.phase, run.image?.digest])).to.deep.equal([['succeeded', pushed]]);
    expect((await after.checkNow()).runs).to.deep.equal([]);
    expect(await deployRuns(store)).to.have.length(1);
  });

  it('deploys a digest a build run pushed on first sight, names its commit, and records a failing command as failed', async () => {
    const store = await openStore('failing');
    const watch = '/src/app^main';
    const deployer = loop(store, 'failing/app', { command: ['/bin/busybox', 'sh', '-c', 'cat /content; echo; exit 3'] }, { watchKey: watch });
    const digest = await pushImage(registry!, 'failing/app', 'main', { content: 'deploy failing' });
    const commit = 'c0ffee'.padEnd(40, '0');
    const build = await recordBuildRun(store, watch, commit, `${registry!.host}/failing/app:main`, digest);

    const { runs } = await deployer.recordBuild(build);
    expect(runs).to.have.length(1);
    expect(runs[0]).to.include({ kind: 'deploy', phase: 'failed', reason: RunReason.StepFailed, exitCode: 3, watch, commit, repo: '/src/app' });
    expect((await store.readLog(runs[0]!.id)).text).to.include('deploy failing').and.include(`built from ${commit.slice(0, 12)} by run ${build.id}`);
    expect(await store.getState(`image:${digest}`)).to.include({ runId: build.id, commit });

    expect((await deployer.checkNow()).runs, 'a failed deploy is not repeated').to.deep.equal([]);
    const listed = await store.listRuns({ watch });
    expect(listed.map((run) => run.kind)).to.have.members(['build', 'deploy']);
  });

  it('finds the build of a digest from the watch\'s newest build run when recordBuild was not called', async () => {
    const store = await openStore('newest-build');
    const watch = '/src/other^main';
    const digest = await pushImage(registry!, 'newest/app', 'main', { content: 'deploy newest' });
    const commit = 'beef'.padEnd(40, '1');
    await recordBuildRun(store, watch, commit, `${registry!.host}/newest/app:main`, digest);
    const deployer = loop(store, 'newest/app', { command: SHOW_CONTENT }, { watchKey: watch });
    const { runs } = await deployer.pollOnce();
    expect(runs.map((run) => [run.phase, run.commit])).to.deep.equal([['succeeded', commit]]);
  });

  it("runs the image with the pipeline's env: and the run's values, and its tool without keelson's tokens", async () => {
    const store = await openStore('environment');
    const secret = `operator-token-${newRunId()}`;
    const deployer = new LocalDeployLoop({
      store, registryReader: client, registry: registry!.host, tags: ['main'],
      pipeline: PipelineSpec.parse({ build: { image: 'env/app' }, env: { GREETING: 'from the pipeline' }, deploy: { command: ['/bin/busybox', 'env'] } }),
      env: { ...buildahInvocation().env, OPERATOR_TOKEN: secret },
      watchKey: '/src/env^main',
    });
    loops.push(deployer);
    const digest = await pushImage(registry!, 'env/app', 'main', { content: 'env one' });
    const build = await recordBuildRun(store, '/src/env^main', 'e'.repeat(40), `${registry!.host}/env/app:main`, digest);
    const { runs } = await deployer.recordBuild(build);
    expect(runs.map((run) => run.phase)).to.deep.equal(['succeeded']);
    const { text } = await store.readLog(runs[0]!.id);
    expect(text).to.include('GREETING=from the pipeline').and.include(`KEELSON_RUN_ID=${runs[0]!.id}`);
    expect(text).not.to.include(secret).and.not.include('OPERATOR_TOKEN');
  });

  it('stops a deploy at its timeout', async () => {
    const store = await openStore('timeout');
    const deployer = loop(store, 'timeout/app', { command: ['/bin/busybox', 'sleep', '60'], timeout: '1s' });
    await pushImage(registry!, 'timeout/app', 'main', { content: 'timeout one' });
    await deployer.pollOnce();
    await pushImage(registry!, 'timeout/app', 'main', { content: 'timeout two' });
    const { runs } = await deployer.checkNow();
    expect(runs.map((run) => [run.phase, run.reason])).to.deep.equal([['failed', RunReason.TimedOut]]);
  });

  it('records a deploy stopped by stop() as interrupted, and deploys that build again on the next start', async () => {
    const store = await openStore('interrupted');
    const watch = '/src/stopped^main';
    const digest = await pushImage(registry!, 'stopped/app', 'main', { content: 'deploy stopped' });
    const build = await recordBuildRun(store, watch, 'abc'.padEnd(40, '2'), `${registry!.host}/stopped/app:main`, digest);
    const slow = loop(store, 'stopped/app', { command: ['/bin/busybox', 'sleep', '600'] }, { watchKey: watch });
    const pending = slow.recordBuild(build);
    while (!(await deployRuns(store)).some((run) => run.phase === 'running')) await new Promise((resolve) => setTimeout(resolve, 100));
    await slow.stop();
    const { runs } = await pending;
    expect(runs.map((run) => [run.phase, run.reason])).to.deep.equal([['interrupted', RunReason.Shutdown]]);
    expect(await store.getState(`deployed:${digest}`)).to.equal(undefined);

    const next = loop(store, 'stopped/app', { command: SHOW_CONTENT }, { watchKey: watch });
    const again = await next.pollOnce();
    expect(again.runs.map((run) => [run.phase, run.image?.digest])).to.deep.equal([['succeeded', digest]]);
  });

  it('pulls from a registry with basic auth through an auth file', async () => {
    const secured = await startRegistry({ auth: true });
    try {
      const store = await openStore('auth');
      const authFile = join(dir!, 'auth.json');
      const config = JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${secured.username}:${secured.password}`).toString('base64') } } });
      await writeFile(authFile, config, { mode: 0o600 });
      const authClient = new RegistryClient({ credentials: parseDockerConfig(config, authFile) });
      try {
        const deployer = new LocalDeployLoop({
          store, registryReader: authClient, registry: secured.host, tags: ['main'], authFile, env: buildahInvocation().env,
          pipeline: PipelineSpec.parse({ build: { image: 'secret/app' }, deploy: { command: SHOW_CONTENT } }),
        });
        loops.push(deployer);
        await pushImage(secured, 'secret/app', 'main', { content: 'auth one' });
        await deployer.pollOnce();
        const pushed = await pushImage(secured, 'secret/app', 'main', { content: 'auth two' });
        const { runs } = await deployer.checkNow();
        expect(runs.map((run) => [run.phase, run.image?.digest])).to.deep.equal([['succeeded', pushed]]);
        const { text } = await store.readLog(runs[0]!.id);
        expect(text).to.include('auth two');
        expect(text).to.not.include(secured.password!);
        await deployer.stop();

        // Without the auth file buildah cannot pull: a failed run that says so.
        const digest = await pushImage(secured, 'secret/other', 'main', { content: 'auth three' });
        const build = await recordBuildRun(store, '/src/secret^main', 'd'.repeat(40), `${secured.host}/secret/other:main`, digest);
        const noAuth = new LocalDeployLoop({
          store, registryReader: authClient, registry: secured.host, tags: ['main'], env: buildahInvocation().env,
          pipeline: PipelineSpec.parse({ build: { image: 'secret/other' }, deploy: { command: SHOW_CONTENT } }),
        });
        loops.push(noAuth);
        const failed = await noAuth.recordBuild(build);
        expect(failed.runs.map((run) => [run.phase, run.reason])).to.deep.equal([['failed', DeployReason.PullFailed]]);
        expect(failed.runs[0]!.message).to.include(`could not pull ${secured.host}/secret/other@${digest}`);
      } finally {
        await authClient.close();
      }
    } finally {
      await secured.stop();
    }
  });
});
