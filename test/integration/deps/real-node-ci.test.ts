import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1ClusterRole, type V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { eventually } from '../../support/cluster.js';
import { tempDir, cleanupRepos } from '../../support/git.js';
import { addLayer } from '../../support/image-layer.js';
import { leftovers, NODE_IP, NODE_REGISTRY, NODE_REGISTRY_CONFIG, REAL_NODE_NAME, startRealNodeCluster, type RealNodeCluster } from '../../support/real-node.js';

const execFileAsync = promisify(execFile);
const NS = 'ci-real';
const RELEASE = `${NODE_REGISTRY}/release/app`;

/**
 * The test step, with real client libraries: a message published to RabbitMQ and consumed back,
 * an object put into the S3 server and read back, both at the endpoints `keelson ci` put in the
 * environment. STEP=fail fails after that; STEP=hang waits until it is killed.
 */
const TEST_STEP = `
import amqp from 'amqplib';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
const env = process.env;
const text = 'hello from ' + env.KEELSON_RUN_ID;

const connection = await amqp.connect('amqp://guest:guest@' + env.KEELSON_DEP_RABBITMQ_HOST + ':' + env.KEELSON_DEP_RABBITMQ_PORT_AMQP);
const channel = await connection.createChannel();
const { queue } = await channel.assertQueue('', { exclusive: true });
channel.sendToQueue(queue, Buffer.from(text));
const received = await new Promise((resolve) => channel.consume(queue, (m) => { channel.ack(m); resolve(m.content.toString()); }));
await connection.close();
if (received !== text) throw new Error('RabbitMQ gave back ' + received);
console.log('rabbitmq round trip: ' + received);

const s3 = new S3Client({
  endpoint: 'http://' + env.KEELSON_DEP_S3_HOST + ':' + env.KEELSON_DEP_S3_PORT_HTTP, region: 'us-east-1', forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
await s3.send(new CreateBucketCommand({ Bucket: 'ci-artifacts' }));
await s3.send(new PutObjectCommand({ Bucket: 'ci-artifacts', Key: 'report.txt', Body: text }));
const object = await s3.send(new GetObjectCommand({ Bucket: 'ci-artifacts', Key: 'report.txt' }));
const stored = await object.Body.transformToString();
if (stored !== text) throw new Error('S3 gave back ' + stored);
console.log('s3 round trip: ' + stored);

if (env.STEP === 'fail') { console.log('test step fails on purpose'); process.exit(1); }
if (env.STEP === 'hang') { console.log('test step waiting'); setInterval(() => {}, 60_000); }
`;

/**
 * build-test-release on a real node: a pod (in-cluster config, a ServiceAccount bound to the
 * keelson-ci role of manifests/rbac.yaml) runs `keelson ci`, which scales a real RabbitMQ and a
 * real S3 server from 0, waits for their readiness probes, runs a test step that talks to both
 * with real client libraries, then a release step promotes the pod's own image by digest; the
 * dependencies go back to 0 after a pass, a failing step, and a pod deleted mid-run (SIGTERM).
 */
describe('keelson ci on a real node: RabbitMQ and S3 scaled up on demand, test, release', function () {
  this.timeout(300_000);
  let node: RealNodeCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  /** The image under test: ci-node (cached) plus this checkout's keelson, `npm pack`ed. */
  let image: string;
  let apiserverPort: number;

  before(async function () {
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster({ images: ['deps', 'ci'] });
    const kc = node.cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    apiserverPort = Number(/server: https:\/\/127\.0\.0\.1:(\d+)/.exec(await readFile(node.cluster.innerKubeconfigPath, 'utf8'))?.[1]);
    image = `${NODE_REGISTRY}/team/app@${await pushKeelsonImage(node.registryHost)}`;

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
    await dependency('rabbitmq', `${NODE_REGISTRY}/keelson-test/rabbitmq:3.10`, { name: 'amqp', port: 5672 }, { tcpSocket: { port: 5672 } });
    await dependency('s3', `${NODE_REGISTRY}/keelson-test/s3rver:3.7.1`, { name: 'http', port: 9000 }, { httpGet: { path: '/', port: 9000 } });
    // Its probe asks a port nothing listens on: it never gets ready.
    await dependency('never-ready', `${NODE_REGISTRY}/keelson-test/s3rver:3.7.1`, { name: 'http', port: 9000 }, { tcpSocket: { port: 9999 } });
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

  it('scales both up, the test step talks to them, the release step promotes the image by digest, both back to 0', async () => {
    await startCi('ci-pass', 'pass', '1.0.0');
    const pod = await finished('ci-pass');
    const log = await core.readNamespacedPodLog({ name: 'ci-pass', namespace: NS });
    expect(pod.status?.phase, log).to.equal('Succeeded');
    expect(pod.spec?.nodeName).to.equal(REAL_NODE_NAME);
    expect(log).to.match(/^rabbitmq round trip: hello from ci-pass-[0-9a-f]+$/m);
    expect(log).to.match(/^s3 round trip: hello from ci-pass-[0-9a-f]+$/m);
    // promote prints DEST@digest; the digest is the built image's, and the registry serves it.
    const digest = image.slice(image.indexOf('@') + 1);
    expect(log).to.contain(`${RELEASE}:1.0.0@${digest}`);
    const served = await fetch(`http://${node.registryHost}/v2/release/app/manifests/1.0.0`, {
      method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(served.headers.get('docker-content-digest')).to.equal(digest);
    // The result on the workload names the digest the runtime ran, for the daemon's trace.
    expect(await ciResult()).to.deep.include({ exitCode: 0, images: [{ container: 'ci', image, digest }] });
    await expectReleased();
    if (process.env.KEELSON_BENCH_LOG) {
      const at = (msg: string): number => (JSON.parse(log.split('\n').find((line) => line.includes(`"msg":"${msg}"`)) ?? '{}') as { time?: number }).time ?? NaN;
      const started = new Date(pod.status?.startTime ?? NaN).getTime();
      process.stderr.write(`ci: dependencies ready ${(at('dependencies ready') - at('workload held')) / 1000} s after scaling up; `
        + `pod ran ${(new Date(pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt ?? NaN).getTime() - started) / 1000} s\n`);
    }
  });

  it('a failing test step: the pod fails with its status, nothing is released, both back to 0', async () => {
    await startCi('ci-fail', 'fail', '1.0.1');
    const pod = await finished('ci-fail');
    const log = await core.readNamespacedPodLog({ name: 'ci-fail', namespace: NS });
    expect(pod.status?.phase, log).to.equal('Failed');
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).to.equal(1);
    expect(log).to.match(/^s3 round trip: /m);
    expect(log).to.contain('test step fails on purpose');
    const release = await fetch(`http://${node.registryHost}/v2/release/app/manifests/1.0.1`, { method: 'HEAD' });
    expect(release.status).to.equal(404);
    expect(await ciResult()).to.include({ exitCode: 1 });
    await expectReleased();
  });

  it('the pod deleted mid-run (SIGTERM): the step is stopped and both go back to 0 before the pod is gone', async () => {
    await startCi('ci-killed', 'hang', '1.0.2');
    await eventually(async () => {
      const log = await core.readNamespacedPodLog({ name: 'ci-killed', namespace: NS });
      if (!log.includes('test step waiting')) throw new Error(`test step not there yet:\n${log}`);
    }, 240_000);
    expect(await replicas('rabbitmq')).to.equal(1);
    expect(await replicas('s3')).to.equal(1);
    await core.deleteNamespacedPod({ name: 'ci-killed', namespace: NS });
    await eventually(async () => {
      const gone = await core.readNamespacedPod({ name: 'ci-killed', namespace: NS }).then(() => false, () => true);
      if (!gone) throw new Error('pod still there');
    }, 120_000);
    // keelson's own release, not the lease running out (10 minutes).
    await expectReleased();
    expect(await ciResult()).to.include({ exitCode: 143 });
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

  async function dependency(name: string, dependencyImage: string, port: { name: string; port: number }, probe: Record<string, unknown>): Promise<void> {
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, role: 'dependency' } },
            spec: {
              containers: [{
                name, image: dependencyImage, ports: [{ name: port.name, containerPort: port.port }],
                readinessProbe: { ...probe, periodSeconds: 1, failureThreshold: 1 },
              }],
            },
          },
        },
      },
    });
    await core.createNamespacedService({ namespace: NS, body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ ...port, targetPort: port.port }] } } });
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
              // The API server's certificate names the node address, not the kubernetes
              // Service's cluster IP: the in-cluster config goes to the address it names.
              { name: 'KUBERNETES_SERVICE_HOST', value: NODE_IP },
              { name: 'KUBERNETES_SERVICE_PORT', value: String(apiserverPort) },
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

/** The ClusterRole `name` exactly as manifests/rbac.yaml declares it. */
function clusterRole(name: string): V1ClusterRole {
  return parseAllDocuments(readFileSync(join(REPO_ROOT, 'manifests/rbac.yaml'), 'utf8'))
    .map((doc) => doc.toJS() as V1ClusterRole & { kind?: string })
    .find((doc) => doc.kind === 'ClusterRole' && doc.metadata?.name === name)!;
}

/** ci-node (from ensure-images.sh ci) plus this checkout's `npm pack` in /app, as team/app:ci; resolves to its digest. */
async function pushKeelsonImage(registryHost: string): Promise<string> {
  // The image runs the compiled CLI: build when dist/ is older than the sources.
  if (CLI_ENTRY[0] !== join(REPO_ROOT, 'dist/cli/main.js')) await execFileAsync('npm', ['run', 'build'], { cwd: REPO_ROOT });
  const work = await tempDir('keelson-ci-image-');
  const { stdout } = await execFileAsync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: REPO_ROOT });
  const stage = join(work, 'stage');
  await mkdir(join(stage, 'app'), { recursive: true });
  await execFileAsync('tar', ['-xzf', join(work, stdout.trim().split('\n').pop()!), '-C', join(stage, 'app'), '--strip-components=1']);
  const digest = await addLayer(registryHost, 'keelson-test/ci-node:20', 'team/app:ci', stage);
  await rm(work, { recursive: true, force: true });
  return digest;
}
