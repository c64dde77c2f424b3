/**
 * `keelson ci` in a pod of each workload kind it supports, under nothing but the `keelson-ci`
 * ClusterRole of manifests/rbac.yaml bound in the build namespace: it finds its own workload from
 * POD_NAME through the owners (ReplicaSet, Job), holds it, scales a dependency up and back down,
 * and leaves its result on the workload. A verb missing from the role is a 403 here.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { AppsV1Api, BatchV1Api, CoreV1Api, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { deploymentBody } from '../../support/kube.js';
import { until } from '../../support/wait.js';

const NS = 'ci-role-it';
const MANIFESTS = fileURLToPath(new URL('../../../manifests/', import.meta.url));
const DEPENDS = { 'keelson.dev/dependencies': 'minio=1' };

describe('keelson ci under the keelson-ci role, in a pod of each workload kind', function () {
  this.timeout(180_000);
  let cluster: RunningCluster;
  let apps: AppsV1Api;
  let batch: BatchV1Api;
  let core: CoreV1Api;
  let work: string;
  let kubeconfig: string;

  const template = (name: string): V1PodTemplateSpec => ({
    metadata: { labels: { app: name } },
    spec: { containers: [{ name: 'build', image: `example.test/${name}:1` }] },
  });

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await sharedCluster();
    const kc = cluster.kubeConfig();
    apps = kc.makeApiClient(AppsV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    core = kc.makeApiClient(CoreV1Api);
    for (const file of ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml']) await cluster.kubectl(['apply', '-f', `${MANIFESTS}${file}`]);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'builder' } } });
    await cluster.kubectl(['-n', NS, 'create', 'rolebinding', 'builder-ci', '--clusterrole', 'keelson-ci', `--serviceaccount=${NS}:builder`]);
    await apps.createNamespacedDeployment({ namespace: NS, body: deploymentBody({ name: 'minio', namespace: NS, replicas: 0, image: 'example.test/minio:1' }) });
    await core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'minio' }, spec: { selector: { app: 'minio' }, ports: [{ name: 'api', port: 9000 }] } } });

    // What a build pod has: its ServiceAccount's token, the API server and its CA; no admin.
    work = await mkdtemp(join(tmpdir(), 'keelson-ci-role-'));
    kubeconfig = await tokenKubeconfig('builder');
  });

  /** A kubeconfig file that authenticates as the ServiceAccount `account` of the namespace. */
  async function tokenKubeconfig(account: string): Promise<string> {
    const token = await core.createNamespacedServiceAccountToken({ name: account, namespace: NS, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const server = cluster.kubeConfig().getCurrentCluster()!;
    const file = join(work, `kubeconfig-${account}`);
    await writeFile(file, stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': account,
      clusters: [{ name: 'c', cluster: { server: server.server, ...(server.caData ? { 'certificate-authority-data': server.caData } : { 'certificate-authority': server.caFile }) } }],
      users: [{ name: account, user: { token: token.status!.token } }],
      contexts: [{ name: account, context: { cluster: 'c', user: account, namespace: NS } }],
    }), { mode: 0o600 });
    return file;
  }

  after(async function () {
    this.timeout(120_000);
    await core?.deleteNamespace({ name: NS }).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A pod of the workload: one whose labels say `app: name`, once the controllers made it. */
  const podOf = (name: string): Promise<string> => until(async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${name}` });
    return pods.items.find((pod) => !pod.metadata?.deletionTimestamp)?.metadata?.name;
  }, `a pod of ${name}`);

  /** `keelson ci` as that pod runs it: POD_NAME and POD_NAMESPACE from the downward API, the ServiceAccount's token. */
  const ciIn = (pod: string, config = kubeconfig): Promise<{ code: number | null; stderr: string }> => new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI_ENTRY, 'ci', '--kubeconfig', config, '--run-id', `run-${pod}`, '--',
      'sh', '-c', `test "$KEELSON_DEP_MINIO_PORT_API" = 9000`], {
      cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POD_NAME: pod, POD_NAMESPACE: NS, KEELSON_LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('exit', (code) => resolve({ code, stderr }));
  });

  const kinds: Array<{ kind: string; name: string; create: () => Promise<unknown>; annotations: () => Promise<Record<string, string> | undefined> }> = [
    {
      kind: 'Deployment', name: 'web',
      create: () => apps.createNamespacedDeployment({ namespace: NS, body: { metadata: { name: 'web', annotations: DEPENDS }, spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('web') } } }),
      annotations: async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: NS })).metadata?.annotations,
    },
    {
      kind: 'StatefulSet', name: 'db',
      create: () => apps.createNamespacedStatefulSet({ namespace: NS, body: { metadata: { name: 'db', annotations: DEPENDS }, spec: { replicas: 1, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db') } } }),
      annotations: async () => (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).metadata?.annotations,
    },
    {
      kind: 'DaemonSet', name: 'agent',
      create: () => apps.createNamespacedDaemonSet({ namespace: NS, body: { metadata: { name: 'agent', annotations: DEPENDS }, spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent') } } }),
      annotations: async () => (await apps.readNamespacedDaemonSet({ name: 'agent', namespace: NS })).metadata?.annotations,
    },
    {
      kind: 'CronJob', name: 'nightly',
      create: async () => {
        await batch.createNamespacedCronJob({ namespace: NS, body: { metadata: { name: 'nightly', annotations: DEPENDS }, spec: { schedule: '0 3 * * *', suspend: true, jobTemplate: { spec: { template: { ...template('nightly'), spec: { ...template('nightly').spec!, restartPolicy: 'Never' } } } } } } });
        // What the CronJob controller does at 3 o'clock: a Job owned by the CronJob.
        await cluster.kubectl(['-n', NS, 'create', 'job', 'nightly-manual', '--from=cronjob/nightly']);
      },
      annotations: async () => (await batch.readNamespacedCronJob({ name: 'nightly', namespace: NS })).metadata?.annotations,
    },
  ];

  for (const { kind, name, create, annotations } of kinds) {
    it(`finds, holds and reports on its own ${kind}, with the dependency scaled up and back to 0`, async () => {
      await create();
      const pod = await podOf(name);
      const result = await ciIn(pod);
      expect(result.stderr).not.to.match(/forbidden|403/i);
      expect(result.code, result.stderr).to.equal(0);
      const after = await annotations();
      expect(after?.['keelson.dev/hold']).to.equal(undefined);
      expect(JSON.parse(after?.['keelson.dev/ci-result'] ?? '{}')).to.include({ run: `run-${pod}`, exitCode: 0 });
      const minio = await apps.readNamespacedDeployment({ name: 'minio', namespace: NS });
      expect(minio.spec?.replicas).to.equal(0);
      expect(minio.metadata?.annotations?.['keelson.dev/leases']).to.equal(undefined);
    });
  }

  it("says in one line what the API server refused, and which role is missing, when the pod's ServiceAccount has none", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deploymentBody({ name: 'unbound', namespace: NS, image: 'example.test/unbound:1', annotations: DEPENDS }) });
    const result = await ciIn(await podOf('unbound'), await tokenKubeconfig('default'));
    expect(result.code).to.equal(1);
    expect(result.stderr.trim().split('\n')).to.have.length(1);
    expect(result.stderr).to.match(/^keelson: the Kubernetes API server refused: 403: .*cannot get resource "pods".*bind the keelson-ci ClusterRole/);
  });
});
