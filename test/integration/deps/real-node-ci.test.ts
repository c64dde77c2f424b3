import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { clusterRole, createDependency, createRabbitmqAndS3, pushCiKeelsonImage, RABBITMQ_IMAGE, S3_IMAGE, TEST_STEP } from '../../support/ci-deps.js';
import { eventually } from '../../support/cluster.js';
import { cleanupRepos } from '../../support/git.js';
import { leftovers, NODE_REGISTRY, NODE_REGISTRY_CONFIG, REAL_NODE_NAME, startRealNodeCluster, type RealNodeCluster } from '../../support/real-node.js';

const NS = 'ci-real';
const RELEASE = `${NODE_REGISTRY}/release/app`;

/**
 * build-test-release on a real node when it does not pass: a pod (in-cluster config, a
 * ServiceAccount bound to the keelson-ci role of manifests/rbac.yaml) runs `keelson ci` for a
 * workload, which scales a real RabbitMQ and a real S3 server from 0, waits for their readiness
 * probes and runs a test step that talks to both with real client libraries; the dependencies go
 * back to 0 after a failing step and when the pod is deleted while it waits for them (SIGTERM to
 * keelson as PID 1), and nothing is released. The passing run and a run stopped mid-step, from the
 * pod of a Deployment keelson rolled, are in test/integration/daemon/real-node-daemon.test.ts.
 */
describe('keelson ci on a real node when it does not pass: RabbitMQ and S3 scaled up on demand, back to 0', function () {
  this.timeout(300_000);
  let node: RealNodeCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  /** The image under test: ci-node (cached) plus this checkout's keelson, `npm pack`ed. */
  let image: string;

  before(async function () {
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster({ images: ['deps', 'ci'] });
    const kc = node.cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    // The dependencies' images pulled onto the node while the rest is set up (they are still
    // scaled from 0 and waited for by their readiness probes), then the image under test.
    const pulled = node.pull([RABBITMQ_IMAGE, S3_IMAGE]);
    pulled.catch(() => undefined); // awaited below; until then a failure must not go unhandled
    image = `${NODE_REGISTRY}/team/app@${await pushCiKeelsonImage(node.registryHost, 'team/app:ci')}`;

    await core.createNamespace({ body: { metadata: { name: NS } } });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }));
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'ci' } } });
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: clusterRole('keelson-ci') });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'ci' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'keelson-ci' },
        subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: NS }],
      },
    });
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: {
        metadata: { name: 'ci-step' },
        data: {
          'test.mjs': TEST_STEP,
          'registry.yaml': NODE_REGISTRY_CONFIG,
        },
      },
    });
    await createRabbitmqAndS3(apps, core, NS);
    // Its probe asks a port nothing listens on: it never gets ready.
    await createDependency(apps, core, NS, 'never-ready', S3_IMAGE, { name: 'http', port: 9000 }, { tcpSocket: { port: 9999 } });
    // The workload whose build this is: it names its dependencies and is held while the run goes.
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'app', annotations: { 'keelson.dev/dependencies': 'rabbitmq=1,s3=1' } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'app' } },
          template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'app', image, command: ['sleep', 'infinity'] }] } },
        },
      },
    });
    await pulled;
    await node.pull([image]);
  });

  after(async function () {
    this.timeout(120_000);
    await cleanupRepos();
    if (node) {
      await node.stop();
      const left = await leftovers(node.dir, node.netns);
      expect([...left.processes, ...left.mounts, ...left.netns, ...left.cgroups]).to.deep.equal([]);
    }
  });

  it('a failing test step: the pod fails with its status, nothing is released, both back to 0', async () => {
    await startCi('ci-fail', 'fail', '1.0.1');
    const pod = await finished('ci-fail');
    const log = await core.readNamespacedPodLog({ name: 'ci-fail', namespace: NS });
    expect(pod.status?.phase, log).to.equal('Failed');
    expect(pod.spec?.nodeName).to.equal(REAL_NODE_NAME);
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).to.equal(1);
    expect(log).to.match(/^s3 round trip: /m);
    expect(log).to.contain('test step fails on purpose');
    const release = await fetch(`http://${node.registryHost}/v2/release/app/manifests/1.0.1`, { method: 'HEAD' });
    expect(release.status).to.equal(404);
    expect(await ciResult()).to.include({ exitCode: 1 });
    await expectReleased();
  });

  it('the pod deleted while it waits for readiness (SIGTERM): the wait ends and both go back to 0 before the pod is gone', async () => {
    await startCi('ci-waiting', 'pass', '1.0.3', ['--dependency', 's3=1,never-ready=1']);
    await eventually(async () => {
      const log = await core.readNamespacedPodLog({ name: 'ci-waiting', namespace: NS });
      if (log.split('\n').filter((line) => line.includes('"msg":"dependency scaled up"')).length < 2) throw new Error(`not scaled up yet:\n${log}`);
    }, 240_000);
    expect(await replicas('never-ready')).to.equal(1);
    await core.deleteNamespacedPod({ name: 'ci-waiting', namespace: NS });
    await eventually(async () => {
      const gone = await core.readNamespacedPod({ name: 'ci-waiting', namespace: NS }).then(() => false, () => true);
      if (!gone) throw new Error('pod still there');
    }, 120_000);
    await expectReleased(['s3', 'never-ready']);
  });

  async function expectReleased(dependencies = ['rabbitmq', 's3']): Promise<void> {
    for (const name of dependencies) {
      const d = await apps.readNamespacedDeployment({ name, namespace: NS });
      expect(d.spec?.replicas, name).to.equal(0);
      expect(d.metadata?.annotations?.['keelson.dev/leases'], name).to.equal(undefined);
    }
    const held = await apps.readNamespacedDeployment({ name: 'app', namespace: NS });
    expect(held.metadata?.annotations?.['keelson.dev/hold']).to.equal(undefined);
    // and their pods really stop
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'role=dependency' });
      if (pods.items.length > 0) throw new Error(`dependency pods left: ${pods.items.map((p) => p.metadata?.name).join(', ')}`);
    }, 120_000);
  }

  async function ciResult(): Promise<Record<string, unknown>> {
    const held = await apps.readNamespacedDeployment({ name: 'app', namespace: NS });
    return JSON.parse(held.metadata?.annotations?.['keelson.dev/ci-result'] ?? '{}') as Record<string, unknown>;
  }

  async function replicas(name: string): Promise<number | undefined> {
    return (await apps.readNamespacedDeployment({ name, namespace: NS })).spec?.replicas;
  }

  /** A build pod: `keelson ci -- test step && release step`, keelson as PID 1 (it gets the SIGTERM). */
  async function startCi(name: string, step: string, version: string, ciArgs = ['--workload', 'deployment/app']): Promise<void> {
    const keelson = ['node', '/app/bin/keelson.js'];
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name },
        spec: {
          serviceAccountName: 'ci',
          restartPolicy: 'Never',
          containers: [{
            name: 'ci',
            image,
            command: [...keelson, 'ci', ...ciArgs, '--timeout', '4m', '--',
              'sh', '-c', `node /ci/step/test.mjs && ${keelson.join(' ')} promote "$IMAGE" --to "$RELEASE" --registry-config /ci/step/registry.yaml`],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'IMAGE', value: image },
              { name: 'RELEASE', value: `${RELEASE}:${version}` },
              { name: 'STEP', value: step },
            ],
            volumeMounts: [{ name: 'step', mountPath: '/ci/step' }],
          }],
          volumes: [{ name: 'step', configMap: { name: 'ci-step' } }],
        },
      },
    });
  }

  async function finished(name: string): Promise<V1Pod> {
    return eventually(async () => {
      const pod = await core.readNamespacedPod({ name, namespace: NS });
      if (pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
        throw new Error(`pod ${name} is ${pod.status?.phase}: ${JSON.stringify(pod.status?.containerStatuses?.[0]?.state)}`);
      }
      return pod;
    }, 240_000);
  }
});
