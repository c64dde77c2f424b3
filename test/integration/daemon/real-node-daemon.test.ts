import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { eventually } from '../../support/cluster.js';
import { REPO_ROOT } from '../../support/cli.js';
import { cleanupRepos, commitFile, git, makeRepo, tempDir } from '../../support/git.js';
import { createRabbitmqAndS3, pushCiKeelsonImage, RABBITMQ_IMAGE, S3_IMAGE, TEST_STEP } from '../../support/ci-deps.js';
import {
  buildKeelsonImage, leftovers, NODE_IP, NODE_REGISTRY, NODE_REGISTRY_CONFIG, startRealNodeCluster, type RealNodeCluster,
} from '../../support/real-node.js';
import { deploymentBody } from '../../support/kube.js';

const execFileAsync = promisify(execFile);

const RELEASE = `${NODE_REGISTRY}/release/web`;
/** The app's base: ci-node plus this checkout's keelson, pushed by the test. */
const APP_BASE = 'keelson-test/ci-keelson:test';
const WEB = 'apps/deployment/web';

/** The app's test and release steps, run by `keelson ci` in the rolled Deployment's own pod. */
const TEST_AND_RELEASE = [
  'set -e',
  'node /ci/step/test.mjs',
  // prints RELEASE@digest: the digest the tag names now, copied by digest
  'node /app/bin/keelson.js promote "$IMAGE" --to "$RELEASE" --registry-config /ci/step/registry.yaml',
  '',
].join('\n');

/**
 * The app's entrypoint: `keelson ci` first (test and release against the dependencies scaled up
 * for it), then the app itself (here: its message, then sleep). keelson ci is not PID 1 here, so
 * the shell passes SIGTERM on and waits for it to release what it holds.
 */
const ENTRYPOINT = [
  '#!/bin/sh',
  'node /app/bin/keelson.js ci -- sh /ci/step/test-and-release.sh &',
  'ci=$!',
  "trap 'kill -TERM $ci' TERM INT",
  'wait $ci; status=$?',
  // a trapped signal ends `wait` early; keelson may still be scaling the dependencies down
  'while kill -0 $ci 2>/dev/null; do wait $ci; status=$?; done',
  "trap - TERM INT",
  'echo "keelson ci exited with $status"',
  '[ "$status" -eq 0 ] || exit "$status"',
  'cat /ci/step/message.txt',
  'exec sleep infinity',
  '',
].join('\n');

/**
 * The second commit's Dockerfile: the app image contains keelson of this checkout with its
 * dependencies and the test step's client libraries (all in one base, so the builder Job pulls
 * one image into its vfs store and copies its tree once per layer), and the commit's files.
 */
const CI_DOCKERFILE = [
  `FROM ${NODE_REGISTRY}/${APP_BASE}`,
  'COPY . /ci/step/',
  'ENTRYPOINT ["sh", "/ci/step/entrypoint.sh"]',
  'CMD []',
  '',
].join('\n');

/**
 * keelson as a long-running pod (the microk8s use) on a real node: its image built from the
 * project's Dockerfile on a base made here from Debian packages, manifests/ applied with kustomize,
 * `keelson daemon` under its ServiceAccount with the in-cluster config (through the kubernetes
 * Service). It watches a repository served by git daemon inside the cluster's network, builds a
 * new commit in the cluster, sees the digest, and rolls an annotated Deployment whose new pod
 * really starts; that pod runs `keelson ci` against RabbitMQ and S3 scaled from 0, and the commit's
 * whole trace shows in `keelson runs --json` and on the status page.
 */
describe('keelson daemon as a pod on a real node', function () {
  this.timeout(600_000);
  let node: RealNodeCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let gitDaemon: ChildProcess | undefined;
  /** The keelson Service, as pods and the node reach it */
  let service: string;
  let repo: string;

  before(async function () {
    this.timeout(60 * 60_000);
    node = await startRealNodeCluster({ images: ['deps', 'ci'] });
    const kc = node.cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    const appBase = pushCiKeelsonImage(node.registryHost, APP_BASE);
    // What the builder Job, the app's pods and its dependencies run, pulled onto the node while
    // keelson's image builds (the dependencies are still scaled from 0 and waited for by readiness).
    const pulled = appBase.then(() => node.pull(['quay.io/buildah/stable:v1.38', `${NODE_REGISTRY}/${APP_BASE}`, RABBITMQ_IMAGE, S3_IMAGE]));
    pulled.catch(() => undefined); // awaited below; until then a failure must not go unhandled
    const [{ image }] = await Promise.all([buildKeelsonImage(node), appBase]);

    // The watched repository, served inside the cluster's network.
    repo = await makeRepo();
    await commitFile(repo, 'Dockerfile', 'FROM busybox:1.36\nCOPY message.txt /message.txt\nCMD ["sh", "-c", "cat /message.txt; exec sleep 3600"]\n');
    await commitFile(repo, 'message.txt', 'first commit\n');
    const served = join(node.dir, 'git');
    await mkdir(served);
    await git(served, 'clone', '--quiet', '--bare', repo, join(served, 'app.git'));
    const [file, ...args] = node.inNetns(['git', 'daemon', `--base-path=${served}`, '--export-all', '--reuseaddr', `--listen=${NODE_IP}`, '--port=9418', served]);
    gitDaemon = spawn(file!, args, { stdio: 'ignore' });

    const overlay = await tempDir('keelson-overlay-');
    await writeFile(join(overlay, 'kustomization.yaml'), kustomization(relative(overlay, join(REPO_ROOT, 'manifests')), image));
    await node.cluster.kubectl(['apply', '-k', overlay]);

    // The app's namespace: its ServiceAccount bound to keelson-ci, its dependencies at 0.
    await core.createNamespace({ body: { metadata: { name: 'apps' } } });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: 'apps' }));
    await core.createNamespacedServiceAccount({ namespace: 'apps', body: { metadata: { name: 'web' } } });
    await kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: 'apps',
      body: {
        metadata: { name: 'web-ci' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'keelson-ci' },
        subjects: [{ kind: 'ServiceAccount', name: 'web', namespace: 'apps' }],
      },
    });
    await createRabbitmqAndS3(apps, core, 'apps');

    await node.cluster.kubectl(['-n', 'keelson', 'rollout', 'status', 'deployment/keelson', '--timeout=180s']);
    await pulled;
    const ip = (await core.readNamespacedService({ name: 'keelson', namespace: 'keelson' })).spec?.clusterIP;
    service = `http://${ip}:8080`;
  });
  after(async function () {
    this.timeout(120_000);
    gitDaemon?.kill();
    await cleanupRepos();
    if (!node) return;
    await node.stop();
    expect(await leftovers(node.dir, node.netns)).to.deep.equal({ processes: [], mounts: [], netns: [], cgroups: [] });
  });

  /** GET through the keelson Service's cluster IP, from inside the cluster's network. */
  async function get(path: string): Promise<{ status: number; body: string }> {
    const [file, ...args] = node.inNetns(['curl', '-sS', '--max-time', '10', '-w', '\n%{http_code}', `${service}${path}`]);
    const { stdout } = await execFileAsync(file!, args, { maxBuffer: 16 * 1024 * 1024 });
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  it('answers /healthz, /readyz, /metrics and the status page through the Service', async () => {
    // kube-proxy programs the Service's endpoint a moment after the pod turns ready; until then
    // the cluster IP refuses the connection.
    await eventually(async () => expect((await get('/healthz')).status).to.equal(200), 30_000);
    await eventually(async () => expect((await get('/readyz')).status).to.equal(200), 60_000);
    expect((await get('/metrics')).body).to.match(/^# HELP keelson_/m);
    expect((await get('/')).body).to.contain('app.git');
  });

  it('builds a new commit in the cluster, rolls the annotated Deployment to it, whose new pod runs keelson ci; the trace shows it all, also a ci run stopped by SIGTERM', async () => {
    const first = await succeededRunOf(await git(repo, 'rev-parse', 'HEAD'));
    const marker = `second-${randomBytes(4).toString('hex')}`;
    const release = `${RELEASE}:${marker}`;
    const web = deploymentBody({
      name: 'web', namespace: 'apps', image: `${NODE_REGISTRY}/team/web:main`,
      annotations: {
        'keel.sh/policy': 'force', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 2s', 'keel.sh/matchTag': 'true',
        'keelson.dev/dependencies': 'rabbitmq=1,s3=1',
      },
      podSpec: { terminationGracePeriodSeconds: 1, serviceAccountName: 'web' },
    });
    const container = web.spec!.template.spec!.containers[0]!;
    // No imagePullPolicy: Always. The same tag rolls to a new digest, and the node, holding the
    // first image under that tag, starts the new one only because the rollout names the digest.
    container.env = [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'IMAGE', value: `${NODE_REGISTRY}/team/web:main` },
      { name: 'RELEASE', value: release },
    ];
    await node.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', ...web }));
    await eventually(async () => expect(await logsOf('apps', 'app=web')).to.equal('first commit\n'), 120_000);
    const oldPods = await podNames('apps', 'app=web');

    // The second commit: an app image with keelson in it, whose pod tests and releases itself.
    await writeFile(join(repo, 'test.mjs'), TEST_STEP);
    await writeFile(join(repo, 'test-and-release.sh'), TEST_AND_RELEASE);
    await writeFile(join(repo, 'entrypoint.sh'), ENTRYPOINT);
    await writeFile(join(repo, 'registry.yaml'), NODE_REGISTRY_CONFIG);
    await writeFile(join(repo, 'message.txt'), `${marker}\n`);
    await writeFile(join(repo, 'Dockerfile'), CI_DOCKERFILE);
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '--quiet', '-m', 'the app tests and releases itself');
    await git(repo, 'push', '--quiet', join(node.dir, 'git', 'app.git'), 'HEAD:main');
    const commit = await git(repo, 'rev-parse', 'HEAD');
    const second = await succeededRunOf(commit);
    const digest = second.image!.digest!;
    expect(digest).to.not.equal(first.image?.digest);

    // The new pod replaced the old one, ran keelson ci to the end, then started the app.
    const log = await eventually(async () => {
      const pods = await podNames('apps', 'app=web');
      expect(pods.filter((p) => oldPods.includes(p))).to.deep.equal([]);
      const text = await logsOf('apps', 'app=web');
      expect(text).to.contain(`${marker}\n`);
      return text;
    }, 300_000);
    expect(log).to.match(/^rabbitmq round trip: hello from web-[0-9a-z-]+$/m);
    expect(log).to.match(/^s3 round trip: hello from web-[0-9a-z-]+$/m);
    expect(log).to.contain(`${release}@${digest}`);
    expect(log).to.contain('keelson ci exited with 0');
    const served = await fetch(`http://${node.registryHost}/v2/release/web/manifests/${marker}`, {
      method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(served.headers.get('docker-content-digest')).to.equal(digest);
    await expectDependenciesReleased();

    // The trace: commit → run → digest → rollout → ci result, in the API through the Service, in
    // `keelson runs --json` in the daemon's pod, and on the run's status page.
    const traced = (run: TracedView | undefined) => {
      expect(run, 'run of the second commit').to.not.equal(undefined);
      expect(run).to.include({ commit, phase: 'succeeded' });
      expect(run!.image?.digest).to.equal(digest);
      expect(run!.trace.rollouts.map((r) => ({ workload: r.workload, digest: r.digest }))).to.deep.include({ workload: WEB, digest });
      expect(run!.trace.ci.map((c) => ({ workload: c.workload, exitCode: c.exitCode }))).to.deep.equal([{ workload: WEB, exitCode: 0 }]);
      return run!;
    };
    const fromApi = await eventually(async () => traced((JSON.parse((await get('/api/runs')).body) as TracedView[]).find((r) => r.id === second.id)), 60_000);
    const listed = await node.cluster.kubectl(['-n', 'keelson', 'exec', 'deploy/keelson', '--',
      'node', '/app/bin/keelson.js', 'runs', '--json', '--state-dir', '/var/lib/keelson/state']);
    expect(traced((JSON.parse(listed) as TracedView[]).find((r) => r.id === second.id)).trace).to.deep.equal(fromApi.trace);
    const page = await get(`/runs/${encodeURIComponent(second.id)}`);
    expect(page.status).to.equal(200);
    expect(section(page.body, 'trace', '</dl>')).to.contain(commit).and.contain(digest);
    expect(section(page.body, 'rolled-out')).to.contain(WEB);
    expect(section(page.body, 'ci')).to.contain(WEB).and.contain(fromApi.trace.ci[0]!.run);

    // A pod of the Deployment stopped mid-run: its step hangs until the Deployment is scaled to 0
    // (nothing replaces the pod); the pod gets SIGTERM, its entrypoint passes it to keelson ci,
    // which stops the step and scales both dependencies back to 0 before the pod is gone.
    await node.cluster.kubectl(['-n', 'apps', 'patch', 'deployment', 'web', '--type=strategic', '-p', JSON.stringify({
      spec: { template: { spec: { terminationGracePeriodSeconds: 30, containers: [{ name: 'app', env: [{ name: 'STEP', value: 'hang' }] }] } } },
    })]);
    const hanging = await eventually(async () => {
      const pods = (await core.listNamespacedPod({ namespace: 'apps', labelSelector: 'app=web' })).items
        .filter((p) => p.spec?.terminationGracePeriodSeconds === 30 && p.status?.phase === 'Running');
      if (pods.length !== 1) throw new Error(`${pods.length} running pods of the patched template`);
      const name = pods[0]!.metadata!.name!;
      const text = await core.readNamespacedPodLog({ namespace: 'apps', name });
      if (!text.includes('test step waiting')) throw new Error(`test step not there yet:\n${text}`);
      return name;
    }, 240_000);
    expect(await replicas('rabbitmq')).to.equal(1);
    expect(await replicas('s3')).to.equal(1);
    await node.cluster.kubectl(['-n', 'apps', 'scale', 'deployment/web', '--replicas=0']);
    await eventually(async () => {
      const gone = await core.readNamespacedPod({ name: hanging, namespace: 'apps' }).then(() => false, () => true);
      if (!gone) throw new Error(`pod ${hanging} still there`);
    }, 120_000);
    await expectDependenciesReleased();
    // The stopped run is in the same digest's trace, with the status of a SIGTERM.
    await eventually(async () => {
      const run = (JSON.parse((await get('/api/runs')).body) as TracedView[]).find((r) => r.id === second.id);
      expect(run?.trace.ci.map((c) => c.exitCode)).to.deep.equal([0, 143]);
    }, 60_000);
  });

  async function replicas(name: string): Promise<number | undefined> {
    return (await apps.readNamespacedDeployment({ name, namespace: 'apps' })).spec?.replicas;
  }

  /** Both dependencies at 0, no leases, no hold (keelson's own release, not a lease running out); their pods end. */
  async function expectDependenciesReleased(): Promise<void> {
    for (const name of ['rabbitmq', 's3']) {
      const d = await apps.readNamespacedDeployment({ name, namespace: 'apps' });
      expect(d.spec?.replicas, name).to.equal(0);
      expect(d.metadata?.annotations?.['keelson.dev/leases'], name).to.equal(undefined);
    }
    const held = await apps.readNamespacedDeployment({ name: 'web', namespace: 'apps' });
    expect(held.metadata?.annotations?.['keelson.dev/hold']).to.equal(undefined);
    await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: 'apps', labelSelector: 'role=dependency' });
      expect(pods.items.map((p) => p.metadata?.name)).to.deep.equal([]);
    }, 120_000);
  }

  async function succeededRunOf(commit: string): Promise<TracedView> {
    return eventually(async () => {
      const runs = JSON.parse((await get('/api/runs')).body) as TracedView[];
      const run = runs.find((r) => r.commit === commit);
      if (run?.phase === 'failed') throw Object.assign(new Error(`run ${run.id} failed: ${run.message}`), { final: true });
      if (run?.phase !== 'succeeded') throw new Error(`run of ${commit}: ${run?.phase ?? 'not seen yet'}`);
      return run;
    }, 300_000);
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

/** What the API and `keelson runs --json` show of a run and its trace. */
interface TracedView {
  id: string;
  commit: string;
  phase: string;
  message?: string;
  image?: { digest?: string };
  trace: { rollouts: Array<{ workload: string; digest: string }>; ci: Array<{ workload: string; run: string; exitCode: number }> };
}

/** The element with this id on a status page, up to its closing tag, without the line-break hints. */
function section(page: string, id: string, closing = '</dd>'): string {
  const start = page.indexOf(`id="${id}"`);
  expect(start, `#${id} on the page`).to.be.greaterThan(-1);
  return page.slice(start, page.indexOf(closing, start)).replaceAll('<wbr>', '');
}

function kustomization(manifests: string, image: string): string {
  const config = {
    watches: [`git://${NODE_IP}:9418/app.git^main`],
    schedule: '@every 2s',
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
            'registry.yaml': NODE_REGISTRY_CONFIG,
          },
        }),
      },
      {
        // One replica with the file store, no leader election.
        patch: JSON.stringify({
          apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'keelson', namespace: 'keelson' },
          spec: {
            template: {
              spec: {
                containers: [{
                  name: 'keelson',
                  args: ['daemon', '--config', '/etc/keelson/keelson.yaml'],
                }],
              },
            },
          },
        }),
      },
    ],
  });
}
