/**
 * What `keelson daemon` loads of @kubernetes/client-node: nothing when it only rolls out (the
 * rollouts go through the small client in src/kube), everything (its generated API classes and
 * models, ~65 MiB of RSS) once it builds in the cluster. Watched for real: the daemon runs
 * against the test cluster with a module-loading hook that logs each module it loads.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { connectKube, type KubeClient } from '../../../src/kube/index.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { deploymentBody } from '../../support/kube.js';
import { startDaemon, stopAllDaemons, until } from './daemon-process.js';

const NS = `client-node-load-${process.pid}`;
const HOOK = new URL('../../support/module-log/register.mjs', import.meta.url).href;

describe('keelson daemon: what it loads of client-node', function () {
  this.timeout(180_000);
  let cluster: RunningCluster;
  let kube: KubeClient;
  let dir: string;

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    cluster = await sharedCluster();
    kube = connectKube({ file: cluster.kubeconfigPath });
    await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: NS } } });
    const deployments = `/apis/apps/v1/namespaces/${NS}/deployments`;
    await kube.request('POST', deployments, { body: deploymentBody({ name: 'followed', image: '127.0.0.1:1/team/app:1.0.0', replicas: 0, annotations: { 'keel.sh/policy': 'minor' } }) });
    await kube.request('POST', deployments, { body: deploymentBody({ name: 'misannotated', image: '127.0.0.1:1/team/app:1.0.0', replicas: 0, annotations: { 'keel.sh/policy': 'sometimes' } }) });
    dir = await mkdtemp(join(tmpdir(), 'keelson-client-node-load-'));
  });

  after(async () => {
    await stopAllDaemons();
    await kube?.request('DELETE', `/api/v1/namespaces/${NS}`).catch(() => undefined);
    await kube?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the daemon until its rollouts follow the workloads; the modules it loaded. */
  const modulesOfDaemon = async (name: string, args: readonly string[] = []): Promise<string[]> => {
    const log = join(dir, `${name}.modules`);
    const daemon = await startDaemon(['--kubeconfig', cluster.kubeconfigPath, '--namespace', NS, '--state-dir', join(dir, name), ...args], {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${HOOK}`, KEELSON_MODULE_LOG: log,
    });
    try {
      await daemon.waitForLog((l) => l.msg === 'rollout controller started' && l.workloads === 2, 'the rollout controller following both workloads');
      // The write path too: the bad annotation is reported as an Event on the workload.
      await until(async () => {
        const events = await kube.request<{ items: unknown[] }>('GET', `/api/v1/namespaces/${NS}/events`, { query: { fieldSelector: 'involvedObject.name=misannotated,reason=InvalidAnnotation' } });
        return events.items.length > 0;
      }, 'the InvalidAnnotation event');
    } finally {
      await daemon.stop();
    }
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  };

  it('rolls out without loading client-node at all, nor ioredis without --redis', async () => {
    const modules = await modulesOfDaemon('rollouts-only');
    expect(modules.some((m) => /\/(dist|src)\/rollout\/discovery\.(js|ts)$/.test(m)), 'the hook saw the rollout modules').to.equal(true);
    expect(modules.some((m) => m.includes('/node_modules/undici/')), 'the hook saw undici').to.equal(true);
    expect(modules.filter((m) => m.includes('@kubernetes/client-node'))).to.deep.equal([]);
    expect(modules.filter((m) => m.includes('/node_modules/ioredis/'))).to.deep.equal([]);
  });

  it('loads it, generated models included, once it builds in the cluster', async () => {
    const modules = await modulesOfDaemon('kubernetes-executor', ['--executor', 'kubernetes']);
    expect(modules.some((m) => m.includes('@kubernetes/client-node/dist/gen/'))).to.equal(true);
  });
});
