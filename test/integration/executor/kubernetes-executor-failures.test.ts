/**
 * Each way a Kubernetes run can go wrong ends as a failed run with a reason and a message a user
 * can act on, never a hang. kwok cannot report an image pull failure or a node-pressure eviction,
 * so for those the builder pod is bound to a Node that does not exist (kwok leaves it alone) and
 * the test writes the pod status a kubelet would, through the real API server.
 */
import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { CoreV1Api, StorageV1Api, type V1Pod } from '@kubernetes/client-node';
import { SupersededError } from '../../../src/domain/index.js';
import { KubernetesExecutor } from '../../../src/executor/kubernetes/index.js';
import type { ExecutionResult } from '../../../src/executor/types.js';
import { clusterProcesses, eventually, sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { mkfifo } from './mkfifo.js';
import { unmanagedNode, kanikoVariant, sourceFixture, testRequest, type SourceFixture, type TestRequest } from './kubernetes-fixtures.js';

const NO_PROVISIONER = 'keelson-test-no-provisioner';

describe('KubernetesExecutor failures against a kwok cluster', function () {
  this.timeout(120_000);
  let cluster: RunningCluster;
  let fixture: SourceFixture;
  let core: CoreV1Api;

  /** A builder template whose pod is bound to a node of its own that no kubelet serves. */
  async function stuckTemplate(): Promise<{ template: string; node: string }> {
    const node = unmanagedNode();
    return { node, template: await kanikoVariant(fixture.dir, `${node}.yaml`, { spec: `nodeName: ${node}` }) };
  }

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await sharedCluster();
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    fixture = await sourceFixture();
    await cluster.kubeConfig().makeApiClient(StorageV1Api).createStorageClass({
      body: { metadata: { name: NO_PROVISIONER }, provisioner: 'keelson.test/nobody', volumeBindingMode: 'Immediate' },
    }).catch((error: { code?: number }) => { if (error.code !== 409) throw error; });
  });
  after(() => fixture?.remove());

  /** The builder pod, once the Job has made it. */
  async function builderPod(namespace: string): Promise<V1Pod> {
    return eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'job-name=build' });
      if (pods.items.length === 0) throw new Error('no builder pod yet');
      return pods.items[0]!;
    });
  }

  /** Writes a pod's status as the kubelet of its node would. */
  async function reportStatus(namespace: string, status: V1Pod['status']): Promise<void> {
    await eventually(async () => {
      const pod = await builderPod(namespace);
      await core.replaceNamespacedPodStatus({ name: pod.metadata!.name!, namespace, body: { ...pod, status: { ...pod.status, ...status } } });
    });
  }

  function run(req: TestRequest, options: { template?: string; podStartTimeoutMs?: number } = {}): Promise<ExecutionResult> {
    return new KubernetesExecutor({ kubeConfig: cluster.kubeConfig(), ...options }).execute(req);
  }

  it('fails a run whose source volume never binds, naming the storage class', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' }, kubernetes: { storageClass: NO_PROVISIONER } });
    const result = await run(req, { podStartTimeoutMs: 3000 });
    expect(result).to.include({ ok: false, reason: 'SourceFailed' });
    expect(result.message).to.contain(`still Pending after 3s (storage class ${NO_PROVISIONER})`);
    expect(result.message).to.contain('kubernetes.storageClass');
  });

  it('fails a run whose builder image cannot be pulled once the kubelet backs off', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const running = run(req, { template: (await stuckTemplate()).template });
    const waiting = (reason: string, message: string) => ({
      phase: 'Pending',
      containerStatuses: [{ name: 'kaniko', image: 'gcr.io/kaniko-project/executor:v1.23.2', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
    });
    await reportStatus(req.namespace, waiting('ErrImagePull', 'failed to pull: 401 Unauthorized'));
    await reportStatus(req.namespace, waiting('ImagePullBackOff', 'Back-off pulling image "gcr.io/kaniko-project/executor:v1.23.2"'));
    const result = await running;
    expect(result, req.logs.join('')).to.include({ ok: false, reason: 'BuildFailed' });
    expect(result.message).to.contain('cannot start: ImagePullBackOff: Back-off pulling image');
    expect(result.message).to.contain('check the image name');
  });

  it('fails a run whose builder pod is evicted, with the kubelet\'s message', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const { node, template } = await stuckTemplate();
    const running = run(req, { template });
    await reportStatus(req.namespace, { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' });
    const result = await running;
    expect(result, req.logs.join('')).to.include({ ok: false, reason: 'BuildFailed' });
    expect(result.message).to.contain(`was evicted from node ${node}: The node was low on resource: ephemeral-storage.`);
  });

  it('fails with SourceFailed when the bytes that reach the volume do not match the checksum', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    // What lands in the volume is lost on the way: the pod side sees an empty file.
    await symlink('/dev/null', join(await cluster.execDirFor(req.namespace), '.keelson-source.tar'));
    const result = await run(req);
    expect(result, req.logs.join('')).to.include({ ok: false, reason: 'SourceFailed' });
    expect(result.message).to.contain('checksum mismatch');
    expect(result.message).to.contain('after 3 attempts');
  });

  it('fails with SourceFailed when the exec breaks mid-copy on every attempt', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' } });
    const execDir = await cluster.execDirFor(req.namespace);
    // A FIFO nobody reads holds the copy inside the exec until the test kills it.
    await mkfifo(join(execDir, '.keelson-source.tar'));
    let done = false;
    let killed = 0;
    const running = run(req).finally(() => { done = true; });
    while (!done) {
      for (const pid of await clusterProcesses(execDir)) {
        try { process.kill(pid, 'SIGKILL'); killed++; } catch { /* gone */ }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const result = await running;
    expect(killed).to.be.at.least(3);
    expect(result, req.logs.join('')).to.include({ ok: false, reason: 'SourceFailed' });
    expect(result.message).to.contain('copying the source into the volume failed after 3 attempts');
    await rm(join(execDir, '.keelson-source.tar'), { force: true });
  });

  for (const [how, reason] of [[new SupersededError('newer commit bbbbbbbbbbbb'), 'Superseded'], [undefined, 'Shutdown']] as const) {
    it(`cancels a run mid-Job cleanly (${reason}) and deletes its namespace`, async () => {
      const req = testRequest(fixture.source, { build: { image: 'team/app' } });
      const running = run(req, { template: (await stuckTemplate()).template });
      await builderPod(req.namespace);
      req.abort.abort(how);
      const result = await running;
      expect(result).to.include({ ok: false, reason });
      if (how) expect(result.message).to.equal(how.message);
      const ns = await core.readNamespace({ name: req.namespace }).catch(() => undefined);
      expect(ns === undefined || ns.metadata?.deletionTimestamp !== undefined).to.equal(true);
    });
  }

  it('times out a run whose builder never starts, saying what it waited for', async () => {
    const req = testRequest(fixture.source, { build: { image: 'team/app' }, timeout: '4s' });
    const result = await run(req, { template: (await stuckTemplate()).template });
    expect(result).to.include({ ok: false, reason: 'TimedOut' });
    expect(result.message).to.match(/^run exceeded its timeout of 4s; pod build-\w+ is Pending/);
  });
});
