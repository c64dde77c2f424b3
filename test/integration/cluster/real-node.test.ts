import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import { CoreV1Api, Exec, type V1Pod, type V1Status } from '@kubernetes/client-node';
import { eventually } from '../../support/cluster.js';
import { pushImage } from '../../support/images.js';
import {
  FAKE_NODE_TAINT, leftovers, NODE_REGISTRY, REAL_NODE_LABEL, REAL_NODE_NAME, reapAbandonedRealNodes, startRealNodeCluster,
  type RealNodeCluster,
} from '../../support/real-node.js';

const NS = 'default';

describe('test cluster with a real node (test/support/real-node.ts)', function () {
  this.timeout(180_000);
  let node: RealNodeCluster | undefined;
  let core: CoreV1Api;

  before(async function () {
    // A cold cache builds the kubelet and the images first.
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster();
    core = node.cluster.kubeConfig().makeApiClient(CoreV1Api);
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }));
  });
  after(async function () {
    this.timeout(120_000);
    await node?.stop();
  });

  it('runs a stock image on the real node for real: its output in the logs, exec with stdin', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: pod('shell', 'busybox:1.36', ['sh', '-c', 'echo "kernel $(uname -r)"; exec sleep 3600'], { nodeSelector: { [REAL_NODE_LABEL]: 'real' } }),
    });
    const running = await phase('shell', 'Running');
    expect(running.spec?.nodeName).to.equal(REAL_NODE_NAME);
    expect(running.status?.podIP).to.match(/^10\.88\./);
    await eventually(async () => {
      expect(await core.readNamespacedPodLog({ name: 'shell', namespace: NS })).to.match(/^kernel \d+\.\d+/);
    });
    const { stdout, status } = await exec('shell', ['sh', '-c', 'head -c 5 > /tmp/in; cat /tmp/in; echo " from $(hostname)"'], 'hello, and more');
    expect(status.status).to.equal('Success');
    expect(stdout).to.equal('hello from shell\n');
  });

  it('pulls an image pushed to the forwarded registry by its name inside the cluster', async () => {
    const content = `real-node-${Date.now()}`;
    await pushImage({ host: node!.registryHost }, 'harness/content', 'v1', { content });
    await core.createNamespacedPod({
      namespace: NS,
      body: pod('content', `${NODE_REGISTRY}/harness/content:v1`, ['/bin/busybox', 'cat', '/content'], {}),
    });
    await phase('content', 'Succeeded');
    expect(await core.readNamespacedPodLog({ name: 'content', namespace: NS })).to.equal(content);
  });

  it('keeps the fake nodes for pods that tolerate their taint (kwok runs those, no container)', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: pod('fake', 'no-such-registry.invalid/never-pulled:1', ['true'], {
        nodeSelector: { type: 'kwok' },
        tolerations: [{ key: FAKE_NODE_TAINT.key, operator: 'Exists', effect: FAKE_NODE_TAINT.effect }],
      }),
    });
    const running = await phase('fake', 'Running');
    expect(running.spec?.nodeName).to.equal('kwok-node-0');
  });

  it('stop() leaves no process, mount, network namespace or cgroup behind', async () => {
    const n = node!;
    expect((await leftovers(n.dir, n.netns)).processes.length).to.be.greaterThan(8);
    await n.stop();
    expect(await leftovers(n.dir, n.netns)).to.deep.equal({ processes: [], mounts: [], netns: [], cgroups: [] });
    expect(await access(n.dir).then(() => 'exists', () => 'gone')).to.equal('gone');
  });

  it('a run killed with SIGKILL leaves nothing that the next start does not reap', async () => {
    // A process of its own that starts a real-node cluster, prints its dir and namespace, then waits.
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', [
      `import { startRealNodeCluster } from ${JSON.stringify(new URL('../../support/real-node.ts', import.meta.url).pathname)};`,
      'const n = await startRealNodeCluster({ fakeNodes: 0 });',
      'console.log(JSON.stringify({ dir: n.dir, netns: n.netns }));',
      'setInterval(() => {}, 1000);',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<{ dir: string; netns: string }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line) as { dir: string; netns: string });
      });
      child.on('exit', (code) => reject(new Error(`cluster process exited with ${code}`)));
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await leftovers(started.dir, started.netns)).processes.length).to.be.greaterThan(8);
    await reapAbandonedRealNodes();
    expect(await leftovers(started.dir, started.netns)).to.deep.equal({ processes: [], mounts: [], netns: [], cgroups: [] });
    expect(await access(started.dir).then(() => 'exists', () => 'gone')).to.equal('gone');
  });

  function pod(name: string, image: string, command: string[], spec: Record<string, unknown>): V1Pod {
    return { metadata: { name }, spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name, image, command }], ...spec } };
  }

  async function phase(name: string, wanted: string): Promise<V1Pod> {
    return eventually(async () => {
      const p = await core.readNamespacedPod({ name, namespace: NS });
      if (p.status?.phase !== wanted) throw new Error(`pod ${name} is ${p.status?.phase}: ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)}`);
      return p;
    }, 120_000);
  }

  async function exec(name: string, command: string[], input: string): Promise<{ stdout: string; status: V1Status }> {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(node!.cluster.kubeConfig())
        .exec(NS, name, name, command, stdout, new PassThrough(), Readable.from([input]), false, resolve)
        .catch(reject);
    });
    return { stdout: Buffer.concat(chunks).toString(), status };
  }
});
