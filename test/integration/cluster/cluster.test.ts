import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import { AppsV1Api, AuthorizationV1Api, BatchV1Api, CoreV1Api, Exec, type V1Deployment, type V1Job, type V1Status } from '@kubernetes/client-node';
import { FAIL_POD_LABEL, clusterProcesses, eventually, startCluster, type RunningCluster } from '../../support/cluster.js';
import { deploymentBody } from '../../support/kube.js';

const NS = 'cluster-harness';

describe('kwok test cluster (test/support/cluster.ts)', function () {
  this.timeout(120_000);
  let cluster: RunningCluster | undefined;
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;

  before(async function () {
    // A cold build of the binaries (no cache) takes far longer than starting the cluster.
    this.timeout(60 * 60_000);
    cluster = await startCluster();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }));
    // the pod that the logs and exec tests talk to
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('shell', 1) });
  });
  after(async function () {
    this.timeout(120_000);
    await cluster?.stop();
  });

  it('serves the pinned Kubernetes version on 127.0.0.1 with RBAC on', async () => {
    const c = cluster!;
    expect(JSON.parse(await c.kubectl(['version', '-o', 'json'])).serverVersion.gitVersion).to.equal(`v${await pinned('KUBE_VERSION')}`);
    expect(c.kubeConfig().getCurrentCluster()?.server).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    // an identity without bindings is refused: authorization is really RBAC, not AlwaysAllow
    const auth = c.kubeConfig().makeApiClient(AuthorizationV1Api);
    const allowed = async (user: string, groups: string[]) => (await auth.createSubjectAccessReview({
      body: { spec: { user, groups, resourceAttributes: { verb: 'list', resource: 'pods', namespace: NS } } },
    })).status?.allowed;
    expect(await allowed('nobody', ['system:authenticated'])).to.equal(false);
    expect(await allowed('kwok-admin', ['system:masters'])).to.equal(true);
  });

  it('runs a Job to Succeeded', async () => {
    await batch.createNamespacedJob({ namespace: NS, body: job('ok') });
    const done = await eventually(async () => {
      const j = await batch.readNamespacedJob({ name: 'ok', namespace: NS });
      if (!j.status?.succeeded) throw new Error(`job not done: ${JSON.stringify(j.status)}`);
      return j;
    });
    expect(done.status?.conditions?.find((c) => c.type === 'Complete')?.status).to.equal('True');
  });

  it('fails a Job whose pod carries the failure label, with the exit code asked for', async () => {
    await batch.createNamespacedJob({
      namespace: NS,
      body: job('broken', { [FAIL_POD_LABEL]: 'true' }, { [`${FAIL_POD_LABEL}/exit-code`]: '3' }),
    });
    const failed = await eventually(async () => {
      const j = await batch.readNamespacedJob({ name: 'broken', namespace: NS });
      if (!j.status?.failed) throw new Error(`job not failed: ${JSON.stringify(j.status)}`);
      return j;
    });
    expect(failed.status?.succeeded ?? 0).to.equal(0);
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')?.status).to.equal('True');
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=broken' });
    const terminated = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(pods.items[0]?.status?.phase).to.equal('Failed');
    expect(terminated?.exitCode).to.equal(3);
  });

  it('brings a Deployment to its ready replicas', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web', 2) });
    const ready = await eventually(async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
      if (d.status?.readyReplicas !== 2) throw new Error(`not ready: ${JSON.stringify(d.status)}`);
      return d;
    });
    expect(ready.status?.availableReplicas).to.equal(2);
  });

  it('serves pod logs through the API', async () => {
    await cluster!.writePodLogs(['first line', 'second line']);
    const pod = await runningPod('app=shell');
    const text = await core.readNamespacedPodLog({ name: pod, namespace: NS, container: 'shell' });
    expect(text).to.equal('first line\nsecond line\n');
  });

  it('runs exec commands for real, in the namespace\'s own directory, with stdin until head -c stops', async () => {
    const dir = await cluster!.execDirFor(NS);
    const pod = await runningPod('app=shell');
    const { stdout, status } = await exec(pod, ['sh', '-c', 'pwd; head -c 5 > from-stdin; echo done'], 'hello, and more');
    expect(status.status).to.equal('Success');
    expect(stdout).to.equal(`${dir}\ndone\n`);
    expect(await readFile(join(dir, 'from-stdin'), 'utf8')).to.equal('hello');
  });

  it('reports a failing exec command as a Failure status naming the exit code', async () => {
    const pod = await runningPod('app=shell');
    const { status } = await exec(pod, ['sh', '-c', 'echo nope >&2; exit 3']);
    expect(status.status).to.equal('Failure');
    // kwok reports a non-zero exit as an InternalError naming the status, where a kubelet sends
    // reason NonZeroExitCode with an ExitCode cause; callers must accept both.
    expect(status.message).to.match(/exit status 3$/);
  });

  it('binds a PersistentVolumeClaim of the default class to a host directory', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    });
    const bound = await eventually(async () => {
      const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: NS });
      if (claim.status?.phase !== 'Bound') throw new Error(`claim ${claim.status?.phase}`);
      return claim;
    });
    const volume = await core.readPersistentVolume({ name: bound.spec!.volumeName! });
    await access(volume.spec!.hostPath!.path);
    expect(volume.spec!.hostPath!.path.startsWith(`${cluster!.workdir}/`)).to.equal(true);
  });

  it('stop() ends every process of the cluster and removes its directory', async () => {
    const c = cluster!;
    expect(await clusterProcesses(c.workdir)).to.have.length.greaterThan(4);
    await c.stop();
    expect(await clusterProcesses(c.workdir)).to.deep.equal([]);
    const gone = await access(c.workdir).then(() => false, () => true);
    expect(gone).to.equal(true);
  });

  function job(name: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}): V1Job {
    return {
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels, annotations },
          spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] },
        },
      },
    };
  }

  function deployment(name: string, replicas: number): V1Deployment {
    return deploymentBody({ name, replicas, container: name, image: 'busybox:1.36', command: ['sleep', 'infinity'] });
  }

  async function runningPod(selector: string): Promise<string> {
    return eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: selector });
      const pod = pods.items.find((p) => p.status?.phase === 'Running');
      if (!pod?.metadata?.name) throw new Error(`no running pod for ${selector}`);
      return pod.metadata.name;
    });
  }

  async function exec(pod: string, command: string[], input?: string): Promise<{ stdout: string; stderr: string; status: V1Status }> {
    const stdout = collect();
    const stderr = collect();
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(cluster!.kubeConfig())
        .exec(NS, pod, 'shell', command, stdout.stream, stderr.stream, input === undefined ? null : Readable.from([input]), false, resolve)
        .catch(reject);
    });
    return { stdout: stdout.text(), stderr: stderr.text(), status };
  }
});

function collect(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

async function pinned(key: string): Promise<string> {
  const env = await readFile(new URL('../../cluster/versions.env', import.meta.url), 'utf8');
  return new RegExp(`^${key}=(.+)$`, 'm').exec(env)![1]!.trim();
}
