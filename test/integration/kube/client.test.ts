import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import {
  apiMessage, connectKube, createKubeClient, KubeApiError, ListWatcher, resolveKubeConnection, statusOf, type KubeClient,
} from '../../../src/kube/index.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { deploymentBody } from '../../support/kube.js';
import { until } from '../../support/wait.js';

const NS = `kube-client-it-${process.pid}`;
const DEPLOYMENTS = `/apis/apps/v1/namespaces/${NS}/deployments`;

describe('the small API client against the test cluster', function () {
  this.timeout(120_000);
  let cluster: RunningCluster;
  let kube: KubeClient;

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    cluster = await sharedCluster();
    kube = connectKube({ file: cluster.kubeconfigPath });
    await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: NS } } });
  });

  after(async () => {
    await kube?.request('DELETE', `/api/v1/namespaces/${NS}`).catch(() => undefined);
    await kube?.close();
  });

  it('answers with JSON, and fails with the status and the API server\'s own words', async () => {
    const created = await kube.request<{ metadata: { name: string; resourceVersion: string } }>('POST', DEPLOYMENTS, { body: deploymentBody({ name: 'one', image: 'example/one:1', replicas: 0 }) });
    expect(created.metadata.name).to.equal('one');
    const patched = await kube.request<{ metadata: { annotations?: Record<string, string> } }>('PATCH', `${DEPLOYMENTS}/one`, {
      body: { metadata: { annotations: { who: 'keelson' } } }, contentType: 'application/merge-patch+json',
    });
    expect(patched.metadata.annotations).to.include({ who: 'keelson' });

    const missing = await kube.request('GET', `${DEPLOYMENTS}/absent`).then(() => undefined, (error: unknown) => error);
    expect(missing).to.be.instanceOf(KubeApiError);
    expect(statusOf(missing)).to.equal(404);
    expect(apiMessage(missing)).to.equal('404: deployments.apps "absent" not found');

    const stale = await kube.request('PATCH', `${DEPLOYMENTS}/one`, {
      body: { metadata: { resourceVersion: created.metadata.resourceVersion, annotations: { who: 'late' } } }, contentType: 'application/merge-patch+json',
    }).then(() => undefined, (error: unknown) => error);
    expect(statusOf(stale)).to.equal(409);
  });

  it('lists by pages, then follows additions, changes and deletions until stopped', async () => {
    for (const name of ['w1', 'w2', 'w3']) await kube.request('POST', DEPLOYMENTS, { body: deploymentBody({ name, image: `example/${name}:1`, replicas: 0 }) });
    const seen = new Map<string, string>();
    const removed: string[] = [];
    const watcher = new ListWatcher<{ name: string; image: string }>({
      client: kube, path: DEPLOYMENTS, pageSize: 2,
      transform: (raw) => {
        const d = raw as { metadata: { name: string }; spec: { template: { spec: { containers: Array<{ image: string }> } } } };
        return { name: d.metadata.name, image: d.spec.template.spec.containers[0]!.image };
      },
      onUpsert: (o) => seen.set(o.name, o.image),
      onRemove: (o) => { seen.delete(o.name); removed.push(o.name); },
      onError: (error) => { throw error; },
    });
    await watcher.start();
    expect([...seen.keys()]).to.include.members(['w1', 'w2', 'w3']); // from the list, before start() resolved
    try {
      await kube.request('POST', DEPLOYMENTS, { body: deploymentBody({ name: 'w4', image: 'example/w4:1', replicas: 0 }) });
      await kube.request('PATCH', `${DEPLOYMENTS}/w1`, { body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/w1:2' }] } } } }, contentType: 'application/strategic-merge-patch+json' });
      await kube.request('DELETE', `${DEPLOYMENTS}/w2`);
      await until(async () => seen.has('w4') && seen.get('w1') === 'example/w1:2' && removed.includes('w2'), 'the watch to report the addition, change and deletion');
    } finally {
      await watcher.stop();
    }
    await kube.request('DELETE', `${DEPLOYMENTS}/w3`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(seen.has('w3')).to.equal(true); // stopped: nothing more arrives
  });

  it('runs a credential plugin (exec) through client-node, and uses the token it hands out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keelson-exec-'));
    try {
      await kube.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { body: { metadata: { name: 'plugin' } } });
      const token = (await cluster.kubectl(['-n', NS, 'create', 'token', 'plugin'])).trim();
      await writeFile(join(dir, 'credential.json'), JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } }));
      await mkdir(join(dir, 'bin'));
      // Named relative to the kubeconfig, as kubectl allows.
      await writeFile(join(dir, 'bin', 'get-token'), '#!/bin/sh\nexec cat "$(dirname "$0")/../credential.json"\n', { mode: 0o755 });
      const admin = resolveKubeConnection({ file: cluster.kubeconfigPath });
      await writeFile(join(dir, 'config'), stringify({
        'current-context': 'c',
        clusters: [{ name: 'k', cluster: { server: admin.server, 'certificate-authority-data': admin.ca!.toString('base64') } }],
        users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './bin/get-token', interactiveMode: 'Never' } } }],
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
      }));
      const client = connectKube({ file: join(dir, 'config') });
      try {
        const review = await client.request<{ status: { userInfo: { username: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        });
        expect(review.status.userInfo.username).to.equal(`system:serviceaccount:${NS}:plugin`);
      } finally {
        await client.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('in a pod: the service account\'s token, CA and namespace, and a rotated token is used from the next call', async () => {
    const kubeconfig = parse(await readFile(cluster.kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
    const server = new URL(kubeconfig.clusters[0]!.cluster.server);
    const admin = resolveKubeConnection({ file: cluster.kubeconfigPath });
    const sa = await mkdtemp(join(tmpdir(), 'keelson-sa-'));
    try {
      for (const name of ['first', 'second']) await kube.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { body: { metadata: { name } } });
      const token = async (name: string): Promise<string> => (await cluster.kubectl(['-n', NS, 'create', 'token', name])).trim();
      await writeFile(join(sa, 'ca.crt'), admin.ca!);
      await writeFile(join(sa, 'namespace'), NS);
      await writeFile(join(sa, 'token'), await token('first'));
      const inPod = resolveKubeConnection({
        env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port }, home: join(sa, 'no-home'), serviceAccountDir: sa,
      });
      expect(inPod.namespace).to.equal(NS);
      const client = createKubeClient(inPod);
      const whoami = async (): Promise<string> => (await client.request<{ status: { userInfo: { username: string } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      })).status.userInfo.username;
      try {
        expect(await whoami()).to.equal(`system:serviceaccount:${NS}:first`);
        // The kubelet swaps the file for a new one.
        await writeFile(join(sa, 'token.new'), await token('second'));
        await rename(join(sa, 'token.new'), join(sa, 'token'));
        expect(await whoami()).to.equal(`system:serviceaccount:${NS}:second`);
      } finally {
        await client.close();
      }
    } finally {
      await rm(sa, { recursive: true, force: true });
    }
  });
});
