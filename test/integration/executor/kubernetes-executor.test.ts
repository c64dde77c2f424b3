import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { DEFAULT_BUILDER_IMAGES, KubernetesExecutor } from '../../../src/executor/kubernetes/index.js';
import { parseRegistryConfig } from '../../../src/registry/index.js';
import { FAIL_POD_LABEL, eventually, sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { kanikoVariant, sourceFixture, testRequest, type SourceFixture } from './kubernetes-fixtures.js';

const DIGEST = `sha256:${'5e'.repeat(32)}`;

describe('KubernetesExecutor against a kwok cluster', function () {
  this.timeout(120_000);
  let cluster: RunningCluster;
  let fixture: SourceFixture;
  let core: CoreV1Api;

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await sharedCluster();
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    fixture = await sourceFixture();
  });
  after(() => fixture?.remove());

  it('copies the tree into the run volume, runs the builder Job, keeps its logs, records the digest and deletes the namespace', async () => {
    // kwok's pod-complete stage leaves the termination message empty, so the digest comes from
    // the log line kaniko prints after a push.
    await cluster.writePodLogs(['kaniko: building', `INFO[0004] Pushed 127.0.0.1:5000/team/app@${DIGEST}`]);
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig() }).execute(req);
    expect(result, `${result.message}\n${req.logs.join('')}`).to.include({ ok: true });
    expect(result.image).to.deep.equal({ ref: '127.0.0.1:5000/team/app:main', pushed: true, digest: DIGEST });
    expect(req.logs.join('')).to.contain(`kaniko: building\nINFO[0004] Pushed 127.0.0.1:5000/team/app@${DIGEST}\n`);
    expect(req.namespace).to.match(/^keelson-app-main-\d{8}-\d{6}-[0-9a-f]{6}$/);
    // kwok ran the copy pod's unpack command in the namespace's exec directory
    const execDir = join(cluster.workdir, 'ns', req.namespace, 'exec');
    expect(await readFile(join(execDir, 'src', 'main.txt'), 'utf8')).to.equal('hello from the committed tree\n');
    expect(await readFile(join(execDir, 'Dockerfile'), 'utf8')).to.contain('FROM scratch');
    const ns = await core.readNamespace({ name: req.namespace }).catch(() => undefined);
    expect(ns === undefined || ns.status?.phase === 'Terminating').to.equal(true);
  });

  it('mounts the registry credentials from a Secret, never in the Job\'s arguments or environment', async () => {
    const credentials = parseRegistryConfig([
      '"127.0.0.1:5000":', '  ".*":', '    security:', '      tls: { client: { disabled: true } }',
      '      basic: { username: robot, password: k8s-s3cret }',
    ].join('\n'), 'registry.yaml');
    const req = testRequest(fixture.source, { build: { image: 'team/app', cacheRepo: 'team/cache' }, kubernetes: { debug: true } });
    const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig(), credentials }).execute(req);
    expect(result, result.message).to.include({ ok: true });
    // debug: the namespace stays, so the Job and Secret can be looked at
    const job = await cluster.kubeConfig().makeApiClient(BatchV1Api).readNamespacedJob({ name: 'build', namespace: req.namespace });
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.args).to.include.members([
      '--destination=127.0.0.1:5000/team/app:main', `--destination=127.0.0.1:5000/team/app:${'a'.repeat(12)}`,
      '--cache=true', '--cache-repo=127.0.0.1:5000/team/cache', '--insecure-registry=127.0.0.1:5000', '--digest-file=/dev/termination-log',
    ]);
    expect(JSON.stringify(job)).not.to.contain('k8s-s3cret');
    expect(JSON.stringify(job)).not.to.contain(Buffer.from('robot:k8s-s3cret').toString('base64'));
    const secret = await core.readNamespacedSecret({ name: 'registry-auth', namespace: req.namespace });
    const config = JSON.parse(Buffer.from(secret.data!['config.json']!, 'base64').toString()) as { auths: Record<string, { username: string }> };
    expect(config.auths['127.0.0.1:5000']!.username).to.equal('robot');
    expect(req.logs.join('')).not.to.contain('k8s-s3cret');
    await core.deleteNamespace({ name: req.namespace });
  });

  for (const builder of ['makisu', 'buildah'] as const) {
    it(`runs the ${builder} builder template`, async () => {
      const req = testRequest(fixture.source, { build: { image: 'team/app', cacheRepo: 'team/cache' }, kubernetes: { builder, redisCacheAddr: 'keelson-redis.keelson:6379', debug: true } });
      const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig() }).execute(req);
      expect(result, `${result.message}\n${req.logs.join('')}`).to.include({ ok: true });
      const job = await cluster.kubeConfig().makeApiClient(BatchV1Api).readNamespacedJob({ name: 'build', namespace: req.namespace });
      const pod = job.spec!.template.spec!;
      const args = [...(pod.initContainers ?? []), ...pod.containers].flatMap((c) => [...(c.command ?? []), ...(c.args ?? [])]);
      if (builder === 'makisu') {
        expect(args).to.include.members(['--redis-cache-addr=keelson-redis.keelson:6379', '--tag=team/app:main', '--push=127.0.0.1:5000', '--registry-config=/registry-config/makisu.json']);
      } else {
        expect(args).to.include.members(['--cache-from=127.0.0.1:5000/team/cache', '--cache-to=127.0.0.1:5000/team/cache', '--digestfile=/dev/termination-log', '127.0.0.1:5000/team/app:main']);
      }
      await core.deleteNamespace({ name: req.namespace });
    });
  }

  it("runs the stock templates with the operator's builder image, or each builder's own", async () => {
    for (const builder of ['kaniko', 'makisu', 'buildah'] as const) {
      for (const builderImage of ['localhost:32000/builder:v1', undefined]) {
        const req = testRequest(fixture.source, { build: { image: 'team/app' }, kubernetes: { builder, debug: true } });
        const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig(), ...(builderImage ? { builderImage } : {}) }).execute(req);
        expect(result, `${result.message}\n${req.logs.join('')}`).to.include({ ok: true });
        const job = await cluster.kubeConfig().makeApiClient(BatchV1Api).readNamespacedJob({ name: 'build', namespace: req.namespace });
        const pod = job.spec!.template.spec!;
        const images = new Set([...(pod.initContainers ?? []), ...pod.containers].map((c) => c.image));
        expect([...images]).to.deep.equal([builderImage ?? DEFAULT_BUILDER_IMAGES[builder]]);
        await core.deleteNamespace({ name: req.namespace });
      }
    }
  });

  it('reports a failed builder Job with its exit code and message, and keeps the namespace for a while', async () => {
    const template = await kanikoVariant(fixture.dir, 'failing-builder.yaml', {
      podLabels: { [FAIL_POD_LABEL]: 'true' },
      podAnnotations: { [`${FAIL_POD_LABEL}/exit-code`]: '7', [`${FAIL_POD_LABEL}/message`]: 'COPY failed with exit code 7' },
    });
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig(), template }).execute(req);
    expect(result, req.logs.join('')).to.include({ ok: false, reason: 'BuildFailed', exitCode: 7 });
    expect(result.message).to.contain('(exit code 7): COPY failed with exit code 7');
    const ns = await core.readNamespace({ name: req.namespace });
    expect(Date.parse(ns.metadata?.annotations?.['keelson.dev/expires-at'] ?? '')).to.be.greaterThan(Date.now());
    expect(ns.metadata?.annotations?.['keelson.dev/repository']).to.equal('https://example.test/team/app.git');
  });

  it('reads a template named by the pipeline from inside the repository only', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' }, kubernetes: { template: '../failing-builder.yaml' } });
    const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig() }).execute(req);
    expect(result).to.include({ ok: false, reason: 'InvalidPipeline' });
    expect(result.message).to.contain('kubernetes.template "../failing-builder.yaml": leads out of the repository');
    // Refused before anything was created in the cluster.
    expect(await core.readNamespace({ name: req.namespace }).then(() => 'exists', () => 'none')).to.equal('none');
  });

  it('refuses a source tree over maxSourceBytes before copying anything', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' }, kubernetes: { maxSourceBytes: 1024 } });
    const result = await new KubernetesExecutor({ kubeConfig: cluster.kubeConfig() }).execute(req);
    expect(result).to.include({ ok: false, reason: 'SourceFailed' });
    expect(result.message).to.contain('maxSourceBytes');
    const pods = await eventually(() => core.listNamespacedPod({ namespace: req.namespace }));
    expect(pods.items).to.deep.equal([]);
  });
});
