/**
 * What the real-node `keelson ci` tests share: the test step that talks to RabbitMQ and the S3
 * server with real client libraries, and those two as dependencies scaled to 0 (Deployments with
 * readiness probes and Services), from the images of `ensure-images.sh deps`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AppsV1Api, CoreV1Api, V1ClusterRole } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { CLI_ENTRY, REPO_ROOT } from './cli.js';
import { tempDir } from './git.js';
import { addLayer } from './image-layer.js';
import { NODE_REGISTRY } from './real-node.js';

const execFileAsync = promisify(execFile);

/**
 * The test step, an ES module run by node where `amqplib` and `@aws-sdk/client-s3` resolve (the
 * ci-node image's /ci): a message published to RabbitMQ and consumed back, an object put into
 * the S3 server and read back, both at the endpoints `keelson ci` put in the environment.
 * STEP=fail fails after that; STEP=hang waits until it is killed.
 */
export const TEST_STEP = `
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

export const RABBITMQ_IMAGE = `${NODE_REGISTRY}/keelson-test/rabbitmq:3.10`;
export const S3_IMAGE = `${NODE_REGISTRY}/keelson-test/s3rver:3.7.1`;

/**
 * A dependency as `keelson ci` finds it: a Deployment at 0 replicas whose pods carry
 * `role=dependency`, with a readiness probe, and a Service of the same name for its endpoint.
 */
export async function createDependency(apps: AppsV1Api, core: CoreV1Api, namespace: string, name: string, image: string,
  port: { name: string; port: number }, probe: Record<string, unknown>): Promise<void> {
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name, role: 'dependency' } },
          spec: {
            // A test dependency holds nothing worth a graceful stop, and these images do not end
            // promptly on SIGTERM: without this each scale-down waits out the default 30 s.
            terminationGracePeriodSeconds: 1,
            containers: [{
              name, image, ports: [{ name: port.name, containerPort: port.port }],
              readinessProbe: { ...probe, periodSeconds: 1, failureThreshold: 1 },
            }],
          },
        },
      },
    },
  });
  await core.createNamespacedService({ namespace, body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ ...port, targetPort: port.port }] } } });
}

/** RabbitMQ (AMQP on 5672) and the S3 server (HTTP on 9000), as `rabbitmq` and `s3`. */
export async function createRabbitmqAndS3(apps: AppsV1Api, core: CoreV1Api, namespace: string): Promise<void> {
  await createDependency(apps, core, namespace, 'rabbitmq', RABBITMQ_IMAGE, { name: 'amqp', port: 5672 }, { tcpSocket: { port: 5672 } });
  await createDependency(apps, core, namespace, 's3', S3_IMAGE, { name: 'http', port: 9000 }, { httpGet: { path: '/', port: 9000 } });
}

/** The ClusterRole `name` exactly as manifests/rbac.yaml declares it. */
export function clusterRole(name: string): V1ClusterRole {
  return parseAllDocuments(readFileSync(join(REPO_ROOT, 'manifests/rbac.yaml'), 'utf8'))
    .map((doc) => doc.toJS() as V1ClusterRole & { kind?: string })
    .find((doc) => doc.kind === 'ClusterRole' && doc.metadata?.name === name)!;
}

/**
 * ci-node (from ensure-images.sh ci: node, keelson's production dependencies in /app, the test
 * step's client libraries in /ci) plus this checkout's keelson (`npm pack`) in /app as one more
 * layer, pushed as `target` (repository:tag) to the registry at `registryHost`; resolves to its
 * digest. The registry needs ci-node, i.e. a cluster started with `images: ['ci']`.
 */
export async function pushCiKeelsonImage(registryHost: string, target: string): Promise<string> {
  // The image runs the compiled CLI: build when dist/ is older than the sources.
  if (CLI_ENTRY[0] !== join(REPO_ROOT, 'dist/cli/main.js')) await execFileAsync('npm', ['run', 'build'], { cwd: REPO_ROOT });
  const work = await tempDir('keelson-ci-image-');
  const { stdout } = await execFileAsync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: REPO_ROOT });
  const stage = join(work, 'stage');
  await mkdir(join(stage, 'app'), { recursive: true });
  await execFileAsync('tar', ['-xzf', join(work, stdout.trim().split('\n').pop()!), '-C', join(stage, 'app'), '--strip-components=1']);
  const digest = await addLayer(registryHost, 'keelson-test/ci-node:20', target, stage);
  await rm(work, { recursive: true, force: true });
  return digest;
}
