import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { Duration } from '../../../src/domain/index.js';
import { connectKube, type KubeClient } from '../../../src/kube/index.js';
import {
  RolloutController, RolloutOutcome, WorkloadApi, buildImagePatch, patchOnFreshState, type WorkloadRef,
} from '../../../src/rollout/index.js';
import { patchFromCache } from '../../../src/rollout/cached-patch.js';
import { trimWorkload } from '../../../src/rollout/discovery.js';
import { containersOf } from '../../../src/rollout/patch.js';
import { FileStore, type Store } from '../../../src/store/index.js';
import { startCluster, type RunningCluster } from '../../support/cluster.js';
import { until } from '../../support/wait.js';
import { deploymentBody } from '../../support/kube.js';

const NS = 'rollout-it';
// One repository per test: the controller replays the latest update of a repository to workloads it
// discovers later, so tests sharing one would see each other's updates.
const REG = '127.0.0.1:5000/team';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function deployment(name: string, image: string, annotations: Record<string, string>): V1Deployment {
  return deploymentBody({ name, namespace: NS, image, annotations });
}

describe('RolloutController on a real API server', function () {
  this.timeout(120_000);
  let cluster: RunningCluster | undefined;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let stateDir: string;
  let store: Store;
  let controller: RolloutController | undefined;
  let kube: KubeClient | undefined;

  const newController = (): RolloutController => new RolloutController({
    kube: kube!, store, namespaces: [NS], approvalInterval: Duration.parse('200ms'),
  });
  const imageOf = async (name: string): Promise<string | undefined> =>
    (await apps.readNamespacedDeployment({ name, namespace: NS })).spec?.template?.spec?.containers[0]?.image;
  const updateEvents = async (name: string): Promise<number> =>
    (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=ImageUpdated` })).items.length;
  const followed = (c: RolloutController, name: string) => until(async () => (await c.workloads()).some((w) => w.key === `${NS}/deployment/${name}` && !w.error), `${name} to be followed`);

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    cluster = await startCluster();
    const kc = cluster.kubeConfig();
    apps = kc.makeApiClient(AppsV1Api);
    core = kc.makeApiClient(CoreV1Api);
    kube = connectKube({ file: cluster.kubeconfigPath });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await until(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }), 'the default service account');
    stateDir = await mkdtemp(join(tmpdir(), 'keelson-rollout-it-'));
    store = await FileStore.open({ stateDir });
    controller = newController();
    await controller.start();
  });

  after(async function () {
    this.timeout(120_000);
    await controller?.stop();
    await kube?.close();
    await store?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await cluster?.stop();
  });

  it('patches an annotated Deployment exactly once for a new image, and skips a badly annotated one', async () => {
    const REPO = `${REG}/semver`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('semver', `${REPO}:1.0.0`, { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll' }) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('broken', `${REPO}:1.0.0`, { 'keel.sh/policy': 'sometimes' }) });
    await followed(controller!, 'semver');
    await until(async () => (await controller!.workloads()).find((w) => w.key === `${NS}/deployment/broken`)?.error, 'broken to be seen');
    expect(controller!.targets().map((t) => `${t.repository}:${t.tag}/${t.mode}`)).to.include(`${REPO}:1.0.0/tags`);
    const before = await apps.readNamespacedDeployment({ name: 'semver', namespace: NS });

    const results = await controller!.applyUpdate({ repository: REPO, tag: '1.1.0', digest: D1 });
    expect(results.find((r) => r.workload.name === 'semver')?.outcome).to.equal(RolloutOutcome.Applied);
    expect(results.some((r) => r.workload.name === 'broken')).to.equal(false);

    const after = await apps.readNamespacedDeployment({ name: 'semver', namespace: NS });
    expect(after.spec?.template?.spec?.containers[0]?.image).to.equal(`${REPO}:1.1.0`);
    expect(after.spec?.template?.metadata?.annotations?.['keelson.dev/update-time']).to.be.a('string');
    expect(after.metadata?.generation).to.equal((before.metadata?.generation ?? 0) + 1);
    expect(await imageOf('broken')).to.equal(`${REPO}:1.0.0`);

    // The same update again, and again from a restarted controller on the same store: nothing.
    const again = await controller!.applyUpdate({ repository: REPO, tag: '1.1.0', digest: D1 });
    expect(again.find((r) => r.workload.name === 'semver')?.outcome).to.not.equal(RolloutOutcome.Applied);
    const restarted = newController();
    await restarted.start();
    try {
      await followed(restarted, 'semver');
      const replay = await restarted.applyUpdate({ repository: REPO, tag: '1.1.0', digest: D1 });
      expect(replay.find((r) => r.workload.name === 'semver')?.outcome).to.not.equal(RolloutOutcome.Applied);
    } finally {
      await restarted.stop();
    }
    expect((await apps.readNamespacedDeployment({ name: 'semver', namespace: NS })).metadata?.generation).to.equal(after.metadata?.generation);
    expect(await until(async () => (await updateEvents('semver')) || undefined, 'the ImageUpdated event')).to.equal(1);
    expect(await store.getState(`rollout:${NS}/deployment/semver`)).to.have.nested.property('containers.app.image', `${REPO}:1.1.0`);
  });

  it('follows a re-pushed tag by digest: what the pods run rolls nothing, a new digest rolls once, pinned', async () => {
    const REPO = `${REG}/pinned`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('pinned', `${REPO}:main@${D1}`, { 'keel.sh/policy': 'force' }) });
    await followed(controller!, 'pinned');
    await until(async () => (await apps.readNamespacedDeployment({ name: 'pinned', namespace: NS })).status?.readyReplicas === 1, 'pinned to be ready');

    const same = await controller!.applyUpdate({ repository: REPO, tag: 'main', digest: D1 });
    expect(same.find((r) => r.workload.name === 'pinned')?.outcome).to.equal(RolloutOutcome.UpToDate);
    const changed = await controller!.applyUpdate({ repository: REPO, tag: 'main', digest: D2 });
    expect(changed.find((r) => r.workload.name === 'pinned')?.outcome).to.equal(RolloutOutcome.Applied);
    expect(await imageOf('pinned')).to.equal(`${REPO}:main@${D2}`);
    const twice = await controller!.applyUpdate({ repository: REPO, tag: 'main', digest: D2 });
    expect(twice.find((r) => r.workload.name === 'pinned')?.outcome).to.not.equal(RolloutOutcome.Applied);
    expect(await updateEvents('pinned')).to.equal(1);
  });

  it('rolls a re-pushed tag as tag@digest unless the container pulls its tag on every start', async () => {
    const REPO = `${REG}/repushed`;
    const pulling = deployment('pulling', `${REPO}:main`, { 'keel.sh/policy': 'force' });
    pulling.spec!.template.spec!.containers[0]!.imagePullPolicy = 'Always';
    await apps.createNamespacedDeployment({ namespace: NS, body: pulling });
    // No pull policy: the API server makes it IfNotPresent, so a restart alone would keep the node's copy.
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('cached', `${REPO}:main`, { 'keel.sh/policy': 'force' }) });
    await followed(controller!, 'pulling');
    await followed(controller!, 'cached');
    // kwok's pods report no digest: the first one seen is the baseline.
    await controller!.applyUpdate({ repository: REPO, tag: 'main', digest: D1 });
    const rolled = await controller!.applyUpdate({ repository: REPO, tag: 'main', digest: D2 });
    expect(rolled.filter((r) => r.outcome === RolloutOutcome.Applied).map((r) => r.workload.name).sort()).to.deep.equal(['cached', 'pulling']);
    expect(await imageOf('pulling')).to.equal(`${REPO}:main`);
    expect(await imageOf('cached')).to.equal(`${REPO}:main@${D2}`);
  });

  it('does not roll a held workload until the hold is released, then rolls it once', async () => {
    const REPO = `${REG}/held`;
    const hold = JSON.stringify({ 'run-1': new Date(Date.now() + 3_600_000).toISOString() });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('held', `${REPO}:2.0.0`, { 'keel.sh/policy': 'patch', 'keelson.dev/hold': hold }) });
    await followed(controller!, 'held');
    const results = await controller!.applyUpdate({ repository: REPO, tag: '2.0.1' });
    expect(results.find((r) => r.workload.name === 'held')?.outcome).to.equal(RolloutOutcome.Held);
    expect(await imageOf('held')).to.equal(`${REPO}:2.0.0`);

    await cluster!.kubectl(['-n', NS, 'annotate', 'deployment', 'held', 'keelson.dev/hold-']);
    await until(async () => (await imageOf('held')) === `${REPO}:2.0.1`, 'the held update to roll after release');
    expect(await until(async () => (await updateEvents('held')) || undefined, 'the event')).to.equal(1);
  });

  it('waits for approvals and applies the update once approved', async () => {
    const REPO = `${REG}/gated`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('gated', `${REPO}:3.0.0`, { 'keel.sh/policy': 'all', 'keel.sh/approvals': '1', 'keel.sh/approvalDeadline': '2' }) });
    await followed(controller!, 'gated');
    const results = await controller!.applyUpdate({ repository: REPO, tag: '3.1.0' });
    const waiting = results.find((r) => r.workload.name === 'gated');
    expect(waiting?.outcome).to.equal(RolloutOutcome.AwaitingApproval);
    const id = waiting!.approvalId!;
    expect((await controller!.approvals.list()).map((a) => a.id)).to.include(id);
    expect(await imageOf('gated')).to.equal(`${REPO}:3.0.0`);

    await controller!.approvals.approve(id, 'ann', new Date());
    await until(async () => (await imageOf('gated')) === `${REPO}:3.1.0`, 'the approved update');
    // The patch lands first, then the record and the approval's removal.
    await until(async () => !(await controller!.approvals.list()).some((a) => a.id === id), 'the approval to be removed');
    expect(await updateEvents('gated')).to.be.at.most(1);
  });

  it('retries a patch on fresh state after a 409 conflict', async () => {
    const REPO = `${REG}/contended`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('contended', `${REPO}:4.0.0`, {}) });
    const api = new WorkloadApi(kube!);
    const ref: WorkloadRef = { kind: 'Deployment', namespace: NS, name: 'contended' };
    const seen: string[] = [];
    const done = await patchOnFreshState(api, ref, async (fresh) => {
      seen.push(fresh.metadata!.resourceVersion!);
      // Someone else writes between our read and our patch, the first time only.
      if (seen.length === 1) await cluster!.kubectl(['-n', NS, 'annotate', 'deployment', 'contended', 'someone/else=was-here']);
      const changes = [{ container: 'app', init: false, from: `${REPO}:4.0.0`, to: `${REPO}:4.0.1` }];
      return { patch: buildImagePatch('Deployment', fresh.metadata?.resourceVersion, changes, new Date()), result: seen.length };
    });
    expect(done?.result).to.equal(2);
    expect(seen[1]).to.not.equal(seen[0]);
    const after = await apps.readNamespacedDeployment({ name: 'contended', namespace: NS });
    expect(after.spec?.template?.spec?.containers[0]?.image).to.equal(`${REPO}:4.0.1`);
    expect(after.metadata?.annotations?.['someone/else']).to.equal('was-here');
  });

  it('never overwrites a spec changed after the informer copy a rollout decided on: decides again on a fresh read', async () => {
    const REPO = `${REG}/stale`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('stale', `${REPO}:5.0.0`, { 'keel.sh/policy': 'minor' }) });
    const api = new WorkloadApi(kube!);
    const ref: WorkloadRef = { kind: 'Deployment', namespace: NS, name: 'stale' };
    // What the informer keeps of it, then someone moves it on by hand before the rollout runs.
    const copy = trimWorkload('Deployment', (await api.get(ref))!);
    await cluster!.kubectl(['-n', NS, 'set', 'image', 'deployment/stale', `app=${REPO}:6.0.0`]);

    const decided: string[] = [];
    const done = await patchFromCache(api, ref, copy, (workload, decidedOn) => {
      const image = containersOf('Deployment', workload, false)[0]!.image!;
      decided.push(`${decidedOn} ${image}`);
      // minor: 5.0.0 -> 5.1.0 is a rollout, 6.0.0 -> 5.1.0 is not
      if (image !== `${REPO}:5.0.0`) return undefined;
      const changes = [{ container: 'app', init: false, from: image, to: `${REPO}:5.1.0` }];
      return { patch: buildImagePatch('Deployment', workload.metadata?.resourceVersion, changes, new Date()), result: changes };
    });
    expect(decided).to.deep.equal([`cache ${REPO}:5.0.0`, `api ${REPO}:6.0.0`]);
    expect(done).to.equal(undefined);
    expect(await imageOf('stale')).to.equal(`${REPO}:6.0.0`);
  });

  it('patches from the informer copy when it is current, without reading the workload first', async () => {
    const REPO = `${REG}/from-copy`;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('from-copy', `${REPO}:7.0.0`, {}) });
    const api = new WorkloadApi(kube!);
    const ref: WorkloadRef = { kind: 'Deployment', namespace: NS, name: 'from-copy' };
    const copy = trimWorkload('Deployment', (await api.get(ref))!);
    const decided: string[] = [];
    const done = await patchFromCache(api, ref, copy, (workload, decidedOn) => {
      decided.push(decidedOn);
      const changes = [{ container: 'app', init: false, from: `${REPO}:7.0.0`, to: `${REPO}:7.1.0` }];
      return { patch: buildImagePatch('Deployment', workload.metadata?.resourceVersion, changes, new Date()), result: changes.length };
    });
    expect(decided).to.deep.equal(['cache']);
    expect(done?.result).to.equal(1);
    expect(done?.workload.metadata?.resourceVersion).to.not.equal(copy.metadata?.resourceVersion);
    expect(await imageOf('from-copy')).to.equal(`${REPO}:7.1.0`);
  });
});
