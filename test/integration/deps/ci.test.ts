import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { CLI_ENTRY, REPO_ROOT as ROOT } from '../../support/cli.js';
import { startCluster, type RunningCluster } from '../../support/cluster.js';
import { until } from '../../support/wait.js';
import { deploymentBody } from '../../support/kube.js';

const NS = 'deps-it';

function deployment(name: string, replicas: number, annotations: Record<string, string> = {}, podSpec: Record<string, unknown> = {}): V1Deployment {
  return deploymentBody({ name, namespace: NS, replicas, annotations, podSpec, container: 'main', image: `example.test/${name}:1` });
}

interface CiRun {
  readonly pid: number;
  readonly done: Promise<{ code: number | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

describe('keelson ci: dependencies on demand on a real API server', function () {
  this.timeout(180_000);
  let cluster: RunningCluster | undefined;
  let apps: AppsV1Api;
  let work: string;

  /** Runs `keelson ci` as its own process, as it runs in a build pod. */
  const ci = (args: string[], script: string): CiRun => {
    const child = spawn(process.execPath, [...CLI_ENTRY, 'ci', '--kubeconfig', cluster!.kubeconfigPath, '--namespace', NS, ...args, '--', 'sh', '-c', `cd "$WORK" && ${script}`], {
      cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WORK: work, KEELSON_LOG_LEVEL: 'warn', KUBECTL: join(cluster!.binDir, 'kubectl'), KC: cluster!.kubeconfigPath, NS },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
    return { pid: child.pid!, done, kill: (signal) => child.kill(signal) };
  };
  const replicas = async (name: string): Promise<number | undefined> => (await apps.readNamespacedDeployment({ name, namespace: NS })).spec?.replicas;
  const annotation = async (name: string, key: string): Promise<string | undefined> => (await apps.readNamespacedDeployment({ name, namespace: NS })).metadata?.annotations?.[key];
  const exists = (file: string) => access(join(work, file)).then(() => true, () => false);
  // What the command saw of the dependencies while it ran: spec.replicas and readyReplicas of each.
  const SEE = '"$KUBECTL" --kubeconfig "$KC" -n "$NS" get deploy minio rabbitmq -o "jsonpath={.items[*].status.readyReplicas}" > seen; env | grep ^KEELSON_DEP_ | sort > env';

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await startCluster();
    const kc = cluster.kubeConfig();
    apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await until(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }), 'the default service account');
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('minio', 0) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('rabbitmq', 0) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('stuck', 0, {}, { nodeSelector: { 'no-such-node': 'true' } }) });
    await core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'minio' }, spec: { selector: { app: 'minio' }, ports: [{ name: 'api', port: 9000 }] } } });
    await core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'rabbitmq' }, spec: { selector: { app: 'rabbitmq' }, ports: [{ name: 'amqp', port: 5672 }] } } });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('build', 1, { 'keelson.dev/dependencies': 'minio=1,rabbitmq=1' }) });
  });

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'keelson-ci-it-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  after(async function () {
    this.timeout(120_000);
    await cluster?.stop();
  });

  const expectReleased = async (): Promise<void> => {
    expect(await replicas('minio')).to.equal(0);
    expect(await replicas('rabbitmq')).to.equal(0);
    expect(await annotation('minio', 'keelson.dev/leases')).to.equal(undefined);
    expect(await annotation('build', 'keelson.dev/hold')).to.equal(undefined);
  };

  it('scales the dependencies up, runs the command with their endpoints, scales them back to 0 on success', async () => {
    const run = ci(['--workload', 'deployment/build', '--timeout', '60s'], `${SEE}; "$KUBECTL" --kubeconfig "$KC" -n "$NS" get deploy build -o "jsonpath={.metadata.annotations.keelson\\.dev/hold}" > hold`);
    const { code, stderr } = await run.done;
    expect(code, stderr).to.equal(0);
    expect((await readFile(join(work, 'seen'), 'utf8')).trim()).to.equal('1 1');
    const env = await readFile(join(work, 'env'), 'utf8');
    expect(env).to.match(/^KEELSON_DEP_MINIO_PORT=9000$/m);
    expect(env).to.match(/^KEELSON_DEP_MINIO_HOST=\S+$/m);
    expect(env).to.match(/^KEELSON_DEP_RABBITMQ_PORT_AMQP=5672$/m);
    expect(await readFile(join(work, 'hold'), 'utf8')).to.match(/^\{".+":"\d{4}-/);
    await expectReleased();
  });

  it('scales them back to 0 when the command fails, and exits with its status', async () => {
    const { code, stderr } = await ci(['--workload', 'deployment/build', '--timeout', '60s'], `${SEE}; exit 3`).done;
    expect(code, stderr).to.equal(3);
    expect((await readFile(join(work, 'seen'), 'utf8')).trim()).to.equal('1 1');
    await expectReleased();
  });

  it('forwards SIGTERM to the command, then scales them back to 0', async () => {
    const run = ci(['--workload', 'deployment/build', '--timeout', '60s'], 'touch started; exec sleep 60');
    await until(() => exists('started'), 'the command to start');
    expect(await replicas('minio')).to.equal(1);
    run.kill('SIGTERM');
    const { code } = await run.done;
    expect(code).to.equal(143);
    await expectReleased();
  });

  it('two runs sharing a dependency never scale it down under each other', async () => {
    const first = ci(['--dependency', 'minio=1', '--run-id', 'first', '--timeout', '60s'], 'touch started-first; while [ ! -f release-first ]; do sleep 0.1; done');
    await until(() => exists('started-first'), 'the first run to start');
    const second = ci(['--dependency', 'minio=1', '--run-id', 'second', '--timeout', '60s'], 'touch started-second');
    expect((await second.done).code).to.equal(0);
    // The second run let go; the first still holds minio up.
    expect(await replicas('minio')).to.equal(1);
    expect(Object.keys(JSON.parse((await annotation('minio', 'keelson.dev/leases'))!))).to.deep.equal(['first']);
    await writeFile(join(work, 'release-first'), '');
    expect((await first.done).code).to.equal(0);
    expect(await replicas('minio')).to.equal(0);
    expect(await annotation('minio', 'keelson.dev/leases')).to.equal(undefined);
  });

  it('a dependency that never gets ready is a clear error naming it, and is scaled back to 0', async () => {
    const { code, stderr } = await ci(['--dependency', 'stuck=1', '--timeout', '2s'], 'touch ran').done;
    expect(code).to.equal(1);
    expect(stderr).to.match(/dependency stuck: 0\/1 replicas ready after 2s/);
    expect(await exists('ran')).to.equal(false);
    expect(await replicas('stuck')).to.equal(0);
  });

  it('a dependency that does not exist is exit 2 and changes nothing', async () => {
    const { code, stderr } = await ci(['--dependency', 'nosuch=1'], 'touch ran').done;
    expect(code).to.equal(2);
    expect(stderr).to.match(/dependency nosuch: no Deployment or StatefulSet "nosuch" in namespace deps-it/);
    expect(await exists('ran')).to.equal(false);
  });
});
