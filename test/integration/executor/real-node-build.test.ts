import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { CoreV1Api } from '@kubernetes/client-node';
import { runKeelson } from '../../support/cli.js';
import { eventually } from '../../support/cluster.js';
import { cleanupRepos, commitFile, makeRepo, tempDir } from '../../support/git.js';
import { leftovers, NODE_REGISTRY, NODE_REGISTRY_CONFIG, REAL_NODE_NAME, startRealNodeCluster, type RealNodeCluster } from '../../support/real-node.js';

/** What `keelson runs --json` shows of a run. */
interface RunView {
  id: string;
  phase: string;
  reason?: string;
  message?: string;
  commit: string;
  startedAt?: string;
  finishedAt?: string;
  image?: { ref: string; digest?: string };
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * keelson's Kubernetes executor, unchanged, on a real node: the copy pod and the stock buildah
 * builder Job (unprivileged) really run, the image is really built and pushed, and then really runs.
 * The CLI runs inside the cluster's network namespace, as it would on a machine of that network.
 */
describe('in-cluster builds on a real node (KubernetesExecutor, stock buildah builder)', function () {
  this.timeout(300_000);
  let node: RealNodeCluster;
  let core: CoreV1Api;
  let work: string;
  let registryConfig: string;

  before(async function () {
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster();
    core = node.cluster.kubeConfig().makeApiClient(CoreV1Api);
    work = await tempDir('keelson-real-build-');
    registryConfig = join(work, 'registry.yaml');
    await writeFile(registryConfig, NODE_REGISTRY_CONFIG);
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' }));
  });
  after(async function () {
    this.timeout(120_000);
    await cleanupRepos();
    if (!node) return;
    await node.stop();
    expect(await leftovers(node.dir, node.netns)).to.deep.equal({ processes: [], mounts: [], netns: [], cgroups: [] });
  });

  it('builds a never-pushed commit: the digest recorded is the one the registry serves, and the image runs', async () => {
    const marker = `only-in-this-commit-${randomBytes(6).toString('hex')}`;
    const repo = await makeRepo();
    await commitFile(repo, 'message.txt', `${marker}\n`);
    const commit = await commitFile(repo, 'Dockerfile', [
      'FROM busybox:1.36',
      'COPY message.txt /message.txt',
      'RUN echo "built from $(cat /message.txt) on $(uname -s)" > /built.txt',
      'CMD ["cat", "/built.txt"]',
      '',
    ].join('\n'));
    const { status, run, output, stateDir } = await build(repo, 'app', { builder: 'buildah' });
    expect(status, output).to.equal(0);
    expect(run).to.include({ phase: 'succeeded', commit });
    expect(run.image?.ref).to.equal(`${NODE_REGISTRY}/team/app:main`);
    expect(run.image?.digest).to.match(/^sha256:[0-9a-f]{64}$/);
    const served = await fetch(`http://${node.registryHost}/v2/team/app/manifests/main`, { method: 'HEAD', headers: { Accept: MANIFEST_TYPES } });
    expect(served.headers.get('docker-content-digest')).to.equal(run.image!.digest);
    const logs = await runKeelson(['logs', run.id, '--state-dir', stateDir]);
    expect(logs.stdout).to.match(/COPY message\.txt/);

    // The run namespace is gone (or going) after a success.
    const namespaces = await core.listNamespace({ labelSelector: `keelson.dev/run=${run.id}` });
    expect(namespaces.items.every((ns) => ns.status?.phase === 'Terminating')).to.equal(true);

    // The image keelson recorded runs and shows what only this commit has.
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'built-image' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: `${NODE_REGISTRY}/team/app@${run.image!.digest}` }] },
      },
    });
    const pod = await eventually(async () => {
      const p = await core.readNamespacedPod({ name: 'built-image', namespace: 'default' });
      if (p.status?.phase !== 'Succeeded') throw new Error(`pod is ${p.status?.phase}: ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)}`);
      return p;
    }, 120_000);
    expect(pod.spec?.nodeName).to.equal(REAL_NODE_NAME);
    expect(await core.readNamespacedPodLog({ name: 'built-image', namespace: 'default' })).to.equal(`built from ${marker} on Linux\n`);
  });

  it('keeps the namespace of a build whose Dockerfile RUN fails, with the reason and the step output', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'Dockerfile', 'FROM busybox:1.36\nRUN echo "failing on purpose" && exit 7\n');
    const { status, run, stateDir } = await build(repo, 'broken', { builder: 'buildah' });
    expect(status).to.equal(1);
    expect(run).to.include({ phase: 'failed', reason: 'BuildFailed' });
    // buildah builds in the Job's init container; its exit code is the run's.
    expect(run.message).to.match(/^builder Job build failed \(exit code [1-9]\d*\)/);
    expect((await runKeelson(['logs', run.id, '--state-dir', stateDir])).stdout).to.contain('failing on purpose');
    await expectKept(run);
  });

  it('keeps the namespace of a source tree over kubernetes.maxSourceBytes, copying nothing', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'big.bin', randomBytes(64 * 1024).toString('base64'));
    await commitFile(repo, 'Dockerfile', 'FROM busybox:1.36\nCOPY big.bin /\n');
    const { status, run } = await build(repo, 'big', { builder: 'buildah', maxSourceBytes: 32 * 1024 });
    expect(status).to.equal(1);
    expect(run).to.include({ phase: 'failed', reason: 'SourceFailed' });
    expect(run.message).to.contain('larger than the limit of 32768 bytes (kubernetes.maxSourceBytes)');
    await expectKept(run);
  });

  it('keeps the namespace of a build whose builder image cannot be pulled, naming the image', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'Dockerfile', 'FROM busybox:1.36\n');
    const missing = `${NODE_REGISTRY}/no/such-builder:1`;
    const { status, run } = await build(repo, 'unpullable', { builder: 'buildah', builderImage: missing });
    expect(status).to.equal(1);
    expect(run).to.include({ phase: 'failed', reason: 'BuildFailed' });
    expect(run.message).to.contain(missing);
    await expectKept(run);
  });

  it('a changed commit reuses the unchanged layers from the cache repository (fewer steps run)', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'message.txt', 'first\n');
    await commitFile(repo, 'Dockerfile', [
      'FROM busybox:1.36',
      // stands for the slow part of a real build (dependencies), unchanged between the commits
      'RUN sleep 6 && echo expensive > /expensive.txt',
      'COPY message.txt /message.txt',
      '',
    ].join('\n'));
    const cache = { cacheRepo: 'team/cached-cache' };
    const first = await build(repo, 'cached', { builder: 'buildah' }, cache);
    expect(first.status, first.output).to.equal(0);
    await commitFile(repo, 'message.txt', 'second\n');
    const second = await build(repo, 'cached', { builder: 'buildah' }, cache);
    expect(second.status, second.output).to.equal(0);
    const firstLog = (await runKeelson(['logs', first.run.id, '--state-dir', first.stateDir])).stdout;
    const secondLog = (await runKeelson(['logs', second.run.id, '--state-dir', second.stateDir])).stdout;
    // buildah says "Using cache" for each step it did not run; the RUN step is one of them now.
    expect(usedCache(firstLog)).to.equal(0);
    expect(usedCache(secondLog), secondLog).to.be.greaterThan(0);
    expect(second.run.image?.digest).to.not.equal(first.run.image?.digest);
    if (process.env.KEELSON_BENCH_LOG) process.stderr.write(`cache: first build ${first.seconds} s, second ${second.seconds} s\n`);
  });

  function usedCache(log: string): number {
    return log.split('\n').filter((line) => /Using cache/i.test(line)).length;
  }

  async function expectKept(run: RunView): Promise<void> {
    const namespaces = await core.listNamespace({ labelSelector: `keelson.dev/run=${run.id}` });
    expect(namespaces.items).to.have.length(1);
    const ns = namespaces.items[0]!;
    expect(ns.status?.phase).to.equal('Active');
    expect(Date.parse(ns.metadata?.annotations?.['keelson.dev/expires-at'] ?? '')).to.be.greaterThan(Date.now());
  }

  async function build(repo: string, name: string, kubernetes: Record<string, unknown>, buildExtra: Record<string, unknown> = {}) {
    const dir = await tempDir('keelson-real-build-run-');
    const stateDir = join(dir, 'state');
    const config = join(dir, 'keelson.yaml');
    await writeFile(config, JSON.stringify({ build: { image: `team/${name}`, tags: ['{{branch}}'], ...buildExtra }, kubernetes: { keepFailed: '1h', ...kubernetes } }));
    const started = Date.now();
    const result = await runKeelson([
      'run', repo, '--executor', 'kubernetes', '--kubeconfig', node.cluster.innerKubeconfigPath, '--config', config,
      '--registry', NODE_REGISTRY, '--registry-config', registryConfig, '--state-dir', stateDir,
    ], { prefix: node.inNetns([]) });
    const seconds = (Date.now() - started) / 1000;
    const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
    const runs = JSON.parse(listed.stdout) as RunView[];
    expect(runs, listed.stderr).to.have.length(1);
    return { status: result.status, run: runs[0]!, output: `${result.stdout}\n${result.stderr}`, stateDir, seconds };
  }
});
