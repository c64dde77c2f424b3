import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CoreV1Api } from '@kubernetes/client-node';
import { eventually } from '../../support/cluster.js';
import { REPO_ROOT } from '../../support/cli.js';
import { cleanupRepos, commitFile, git, makeRepo, tempDir } from '../../support/git.js';
import { buildahInvocation } from '../../support/images.js';
import { leftovers, NODE_IP, NODE_REGISTRY, startRealNodeCluster, type RealNodeCluster } from '../../support/real-node.js';
import { deploymentBody } from '../../support/kube.js';

const execFileAsync = promisify(execFile);

/**
 * keelson as a long-running pod (the microk8s use) on a real node: its image built from the
 * project's Dockerfile on a base made here from Debian packages, manifests/ applied with kustomize,
 * `keelson daemon` under its ServiceAccount with the in-cluster config. It watches a repository
 * served by git daemon inside the cluster's network, builds a new commit in the cluster, sees the
 * digest, and rolls an annotated Deployment whose new pod really starts.
 */
describe('keelson daemon as a pod on a real node', function () {
  this.timeout(600_000);
  let node: RealNodeCluster;
  let core: CoreV1Api;
  let gitDaemon: ChildProcess | undefined;
  let forward: { port: number; stop(): void } | undefined;
  let repo: string;

  before(async function () {
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster();
    core = node.cluster.kubeConfig().makeApiClient(CoreV1Api);
    const image = await buildKeelsonImage(node);

    // The watched repository, served inside the cluster's network.
    repo = await makeRepo();
    await commitFile(repo, 'Dockerfile', 'FROM busybox:1.36\nCOPY message.txt /message.txt\nCMD ["sh", "-c", "cat /message.txt; exec sleep 3600"]\n');
    await commitFile(repo, 'message.txt', 'first commit\n');
    const served = join(node.dir, 'git');
    await mkdir(served);
    await git(served, 'clone', '--quiet', '--bare', repo, join(served, 'app.git'));
    const [file, ...args] = node.inNetns(['git', 'daemon', `--base-path=${served}`, '--export-all', '--reuseaddr', `--listen=${NODE_IP}`, '--port=9418', served]);
    gitDaemon = spawn(file!, args, { stdio: 'ignore' });

    const apiserverPort = /server: https:\/\/127\.0\.0\.1:(\d+)/.exec(await node.cluster.kubectl(['config', 'view', '--raw', '--kubeconfig', node.cluster.innerKubeconfigPath]))![1]!;
    const overlay = await tempDir('keelson-overlay-');
    await writeFile(join(overlay, 'kustomization.yaml'), kustomization(relative(overlay, join(REPO_ROOT, 'manifests')), image, apiserverPort));
    await node.cluster.kubectl(['apply', '-k', overlay]);
    await node.cluster.kubectl(['-n', 'keelson', 'rollout', 'status', 'deployment/keelson', '--timeout=180s']);
    forward = await portForward(node, 'keelson', 'svc/keelson', 8080);
  });
  after(async function () {
    this.timeout(120_000);
    forward?.stop();
    gitDaemon?.kill();
    await cleanupRepos();
    if (!node) return;
    await node.stop();
    expect(await leftovers(node.dir, node.netns)).to.deep.equal({ processes: [], mounts: [], netns: [], cgroups: [] });
  });

  it('answers /healthz, /readyz, /metrics and the status page through the Service', async () => {
    const base = `http://127.0.0.1:${forward!.port}`;
    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    await eventually(async () => expect((await fetch(`${base}/readyz`)).status).to.equal(200), 60_000);
    expect(await (await fetch(`${base}/metrics`)).text()).to.match(/^# HELP keelson_/m);
    expect(await (await fetch(`${base}/`)).text()).to.contain('app.git');
  });

  it('builds a new commit in the cluster and rolls the annotated Deployment to it: the new pod runs the new image', async () => {
    const base = `http://127.0.0.1:${forward!.port}`;
    const first = await succeededRunOf(base, await git(repo, 'rev-parse', 'HEAD'));
    await core.createNamespace({ body: { metadata: { name: 'apps' } } }).catch(() => undefined);
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: 'apps' }));
    const web = deploymentBody({
      name: 'web', namespace: 'apps', image: `${NODE_REGISTRY}/team/web:main`,
      annotations: { 'keel.sh/policy': 'force', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 2s', 'keel.sh/matchTag': 'true' },
      podSpec: { terminationGracePeriodSeconds: 1 },
    });
    // The same tag rolls to a new digest: without Always the node would start its cached image.
    web.spec!.template.spec!.containers[0]!.imagePullPolicy = 'Always';
    await node.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', ...web }));
    await eventually(async () => expect(await logsOf('apps', 'app=web')).to.equal('first commit\n'), 120_000);
    const oldPods = await podNames('apps', 'app=web');

    const marker = `second-${randomBytes(4).toString('hex')}`;
    await commitFile(repo, 'message.txt', `${marker}\n`);
    await git(repo, 'push', '--quiet', join(node.dir, 'git', 'app.git'), 'HEAD:main');
    const second = await succeededRunOf(base, await git(repo, 'rev-parse', 'HEAD'));
    expect(second.image?.digest).to.not.equal(first.image?.digest);

    await eventually(async () => {
      const pods = await podNames('apps', 'app=web');
      expect(pods.filter((p) => oldPods.includes(p))).to.deep.equal([]);
      expect(await logsOf('apps', 'app=web')).to.equal(`${marker}\n`);
    }, 180_000);
  });

  async function succeededRunOf(base: string, commit: string): Promise<{ id: string; image?: { digest?: string } }> {
    return eventually(async () => {
      const runs = await (await fetch(`${base}/api/runs`)).json() as Array<{ id: string; commit: string; phase: string; image?: { digest?: string } }>;
      const run = runs.find((r) => r.commit === commit);
      if (run?.phase === 'failed') throw Object.assign(new Error(`run ${run.id} failed`), { final: true });
      if (run?.phase !== 'succeeded') throw new Error(`run of ${commit}: ${run?.phase ?? 'not seen yet'}`);
      return run;
    }, 240_000);
  }

  async function podNames(namespace: string, selector: string): Promise<string[]> {
    return (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.map((p) => p.metadata!.name!);
  }

  async function logsOf(namespace: string, selector: string): Promise<string> {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
    if (pods.length !== 1) throw new Error(`${pods.length} running pods for ${selector}`);
    return core.readNamespacedPodLog({ namespace, name: pods[0]!.metadata!.name! });
  }
});

/**
 * keelson's image from the project's Dockerfile, with the base made here (BASE build argument),
 * built on the host with buildah (npm ci reaches the npm registry from there) and pushed to the
 * cluster's registry. A store kept in the cache dir keeps the npm ci layer between runs.
 */
async function buildKeelsonImage(node: RealNodeCluster): Promise<string> {
  const { env, globalArgs, policyPath } = buildahInvocation();
  const buildah = (args: string[]) => execFileAsync('buildah', [...globalArgs, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
  // npm ci reaches the npm registry through this machine's TLS setup: the base gets its CA bundle.
  const base = (await buildah(['from', '--quiet', '--signature-policy', policyPath, '--tls-verify=false', `${node.registryHost}/keelson-test/node:20`])).stdout.trim();
  await buildah(['copy', base, '/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt']);
  await buildah(['config', '--env', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', base]);
  await buildah(['commit', '--quiet', '--rm', base, 'localhost/keelson-test/node-base:20']);
  const tag = `${node.registryHost}/keelson/keelson:test`;
  await buildah(['bud', '--quiet', '--layers', '--isolation', 'chroot', '--signature-policy', policyPath,
    '--build-arg', 'BASE=localhost/keelson-test/node-base:20', '-t', tag, '-f', join(REPO_ROOT, 'Dockerfile'), REPO_ROOT]);
  await execFileAsync('buildah', [...globalArgs, 'push', '--quiet', '--signature-policy', policyPath, '--tls-verify=false', tag, `docker://${tag}`], { env });
  return `${NODE_REGISTRY}/keelson/keelson:test`;
}

function kustomization(manifests: string, image: string, apiserverPort: string): string {
  const config = {
    watches: [{ repo: `git://${NODE_IP}:9418/app.git^main`, schedule: '@every 2s' }],
    executor: 'kubernetes',
    registry: NODE_REGISTRY,
    registryConfig: '/etc/keelson/registry.yaml',
    stateDir: '/var/lib/keelson/state',
    server: { port: 8080, host: '0.0.0.0' },
    rollouts: { enabled: true, namespaces: ['apps'] },
    build: { image: 'team/web', tags: ['{{branch}}'] },
    kubernetes: { builder: 'buildah', keepFailed: '1h' },
  };
  const [repository, tag] = image.split(/:(?=[^:/]+$)/);
  return JSON.stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [manifests],
    images: [{ name: 'keelson', newName: repository, newTag: tag }],
    patches: [
      { patch: JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'keelson-redis', namespace: 'keelson' }, $patch: 'delete' }) },
      { patch: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'keelson-redis', namespace: 'keelson' }, $patch: 'delete' }) },
      {
        patch: JSON.stringify({
          apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'keelson-config', namespace: 'keelson' },
          data: {
            'keelson.yaml': JSON.stringify(config),
            'registry.yaml': `"${NODE_REGISTRY}":\n  ".*":\n    security:\n      tls: { client: { disabled: true } }\n`,
          },
        }),
      },
      {
        // No kube-proxy here: the API server is reached at its address in the namespace, not
        // through the kubernetes Service; one replica with the file store, no leader election.
        patch: JSON.stringify({
          apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'keelson', namespace: 'keelson' },
          spec: {
            template: {
              spec: {
                containers: [{
                  name: 'keelson',
                  args: ['daemon', '--config', '/etc/keelson/keelson.yaml'],
                  env: [{ name: 'KUBERNETES_SERVICE_HOST', value: NODE_IP }, { name: 'KUBERNETES_SERVICE_PORT', value: apiserverPort }],
                }],
              },
            },
          },
        }),
      },
    ],
  });
}

/** `kubectl port-forward` to 127.0.0.1:<free port>; resolves once it listens. */
async function portForward(node: RealNodeCluster, namespace: string, target: string, port: number): Promise<{ port: number; stop(): void }> {
  const child = spawn(join(node.cluster.binDir, 'kubectl'), ['--kubeconfig', node.cluster.kubeconfigPath, '-n', namespace, 'port-forward', target, `:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const local = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = /127\.0\.0\.1:(\d+)/.exec(out);
      if (found) resolve(Number(found[1]));
    });
    child.stderr!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('exit', (code) => reject(new Error(`kubectl port-forward exited with ${code}: ${out}`)));
  });
  return { port: local, stop: () => child.kill() };
}
