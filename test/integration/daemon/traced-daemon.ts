/**
 * A real `keelson daemon` with everything its status page shows, for the HTTP and browser tests
 * of the page: a git watch of a local repository built with buildah and pushed to a real
 * docker-registry, annotated Deployments on the test cluster (kube-apiserver + kwok) that the
 * daemon rolls (one needs an approval, one names an image that does not exist, one declares a
 * dependency, one refuses every change of its pod template through a ValidatingAdmissionPolicy,
 * so its rollout fails), and a `keelson ci` run holding that dependency.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { RunRecord } from '../../../src/store/index.js';
import type { TracedRun } from '../../../src/trace/index.js';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { cleanupRepos, git, makeRepo } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { deploymentBody } from '../../support/kube.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';
import { startDaemon, stopAllDaemons, until, type DaemonProcess } from './daemon-process.js';

export interface CiHandle {
  /** The holder id it runs under (`--run-id`) */
  readonly id: string;
  /** Lets the command finish with `exitCode`; resolves with the exit status of `keelson ci`. */
  finish(exitCode: number): Promise<number | null>;
}

export interface TracedDaemon {
  readonly daemon: DaemonProcess;
  readonly cluster: RunningCluster;
  readonly registry: RunningRegistry;
  readonly namespace: string;
  readonly stateDir: string;
  /** `registry/trace/app` */
  readonly repository: string;
  /** The first build: its digest became the baseline, nothing rolled */
  readonly first: RunRecord;
  /** The second build: its digest was rolled to `web`; `gated` waits for an approval; `frozen` refused it */
  readonly rolled: RunRecord;
  readonly apps: AppsV1Api;
  /** GET `path` on the daemon as JSON */
  api<T>(path: string): Promise<T>;
  /** Commits `message.txt` (and optionally a Containerfile that cannot build) and waits for its run to end. */
  commit(message: string, options?: { broken?: boolean }): Promise<RunRecord>;
  /** Starts `keelson ci --workload deployment/web`, which holds `minio` until finish(). */
  startCi(id: string): Promise<CiHandle>;
  stop(): Promise<void>;
}

const NAMESPACE_PREFIX = 'trace-it';

/** Sets the scene up; each caller stops it in `after`. */
export async function startTracedDaemon(): Promise<TracedDaemon> {
  const namespace = `${NAMESPACE_PREFIX}-${Math.random().toString(16).slice(2, 8)}`;
  const cluster = await sharedCluster();
  const registry = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'keelson-trace-it-'));
  const stateDir = join(dir, 'state');
  const apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const admission = cluster.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
  const freeze = `keelson-${namespace}-freeze`;
  const ciChildren = new Set<ReturnType<typeof spawn>>();
  let daemon: DaemonProcess | undefined;
  const stop = async (): Promise<void> => {
    // SIGTERM: keelson ci passes it to its command and releases the hold and leases; a SIGKILL
    // would leave the command behind.
    await Promise.all([...ciChildren].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    })));
    await stopAllDaemons();
    await registry.stop();
    await admission.deleteValidatingAdmissionPolicyBinding({ name: freeze }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name: freeze }).catch(() => undefined);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await cleanupRepos();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await until(() => core.readNamespacedServiceAccount({ name: 'default', namespace }), 'the default service account');

    const repo = await makeRepo();
    const base = baseImageDir();
    const containerfile = `${await readFile(join(base, 'Containerfile'), 'utf8')}COPY message.txt /message.txt\n`;
    await copyFile(join(base, 'busybox'), join(repo, 'busybox'));
    await writeFile(join(repo, 'Containerfile'), containerfile);
    const repository = `${registry.host}/trace/app`;
    await writeFile(join(dir, 'keelson.yaml'), [
      `watches: ['${repo}^main']`,
      "schedule: '@every 5s'",
      `registry: ${registry.host}`,
      'build:',
      '  image: trace/app',
      '  dockerfile: Containerfile',
      "  tags: ['main']",
      '',
    ].join('\n'));

    const poll = { 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 1s', 'keel.sh/policy': 'force', 'keel.sh/matchTag': 'true' };
    const image = `${repository}:main`;
    await apps.createNamespacedDeployment({ namespace, body: deploymentBody({ name: 'web', namespace, image, annotations: { ...poll, 'keelson.dev/dependencies': 'minio=1' } }) });
    await apps.createNamespacedDeployment({ namespace, body: deploymentBody({ name: 'gated', namespace, image, annotations: { ...poll, 'keel.sh/approvals': '1' } }) });
    await apps.createNamespacedDeployment({ namespace, body: deploymentBody({ name: 'orphan', namespace, image: `${registry.host}/trace/missing:1.0.0`, annotations: { ...poll, 'keel.sh/policy': 'minor' } }) });
    await apps.createNamespacedDeployment({ namespace, body: deploymentBody({ name: 'minio', namespace, image: 'example.test/minio:1', replicas: 0 }) });
    await apps.createNamespacedDeployment({ namespace, body: { ...deploymentBody({ name: 'frozen', namespace, image, annotations: poll }), metadata: { name: 'frozen', namespace, annotations: poll, labels: { 'keelson-test/frozen': 'true' } } } });
    // The API server itself refuses any change of frozen's pod template: its rollouts fail.
    await admission.createValidatingAdmissionPolicy({ body: {
      metadata: { name: freeze },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'] }] },
        validations: [{ expression: 'object.spec.template == oldObject.spec.template', message: 'the pod template of this workload is frozen' }],
      },
    } });
    await admission.createValidatingAdmissionPolicyBinding({ body: {
      metadata: { name: freeze },
      spec: {
        policyName: freeze, validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } }, objectSelector: { matchLabels: { 'keelson-test/frozen': 'true' } } },
      },
    } });
    await until(async () => {
      const refused = await apps.patchNamespacedDeployment({ name: 'frozen', namespace, body: { spec: { template: { metadata: { annotations: { probe: String(Date.now()) } } } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch)).then(() => false, (error: unknown) => [403, 422].includes((error as { code?: number }).code ?? 0));
      return refused;
    }, 'the API server to enforce the frozen policy');

    daemon = await startDaemon(['--config', join(dir, 'keelson.yaml'), '--kubeconfig', cluster.kubeconfigPath, '--namespace', namespace, '--state-dir', stateDir],
      buildahInvocation().env);
    const url = daemon.url;
    const api = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${url}${path}`);
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };
    const ended = (commit: string) => until(async () => (await api<RunRecord[]>('/api/runs')).find((r) => r.commit === commit && r.finishedAt !== undefined),
      `the run of ${commit.slice(0, 12)} to end`, 180_000);
    const commit = async (message: string, options: { broken?: boolean } = {}): Promise<RunRecord> => {
      await writeFile(join(repo, 'message.txt'), message);
      await writeFile(join(repo, 'Containerfile'), options.broken ? `${containerfile}RUN ["/bin/busybox", "false"]\n` : containerfile);
      await git(repo, 'add', '--', '.');
      await git(repo, 'commit', '--quiet', '-m', message);
      return ended(await git(repo, 'rev-parse', 'HEAD'));
    };

    // What docker-registry's notifications send after a push: the watcher checks at once, whatever its backoff.
    const notify = async (after: RunRecord): Promise<void> => {
      const response = await fetch(`${url}/webhooks/registry`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ action: 'push', target: { repository: 'trace/app', tag: 'main' }, request: { host: registry.host } }] }),
      });
      if (response.status !== 202) throw new Error(`registry webhook: ${response.status} ${await response.text()}`);
      await until(async () => {
        const job = (await api<Array<{ key: string; failures: number; lastCheckedAt?: string }>>('/api/registry')).find((j) => j.key === `${repository}:main`);
        return job && job.failures === 0 && job.lastCheckedAt !== undefined && job.lastCheckedAt >= after.finishedAt!;
      }, 'the registry watcher to see the pushed digest', 120_000);
    };
    const first = await commit('first build');
    if (first.phase !== 'succeeded' || !first.image?.digest) throw new Error(`the first build did not push: ${JSON.stringify(first)}`);
    // The first digest is the baseline (kwok's pods report no imageID): nothing rolls to it.
    await notify(first);
    const rolled = await commit('second build');
    if (rolled.phase !== 'succeeded' || !rolled.image?.digest) throw new Error(`the second build did not push: ${JSON.stringify(rolled)}`);
    await notify(rolled);
    await until(async () => (await api<TracedRun>(`/api/runs/${rolled.id}`)).trace.rollouts.length > 0, 'the second digest to be rolled out', 120_000);

    const startCi = async (id: string): Promise<CiHandle> => {
      const gate = join(dir, `${id}.exit`);
      const child = spawn(process.execPath, [
        ...CLI_ENTRY, 'ci', '--kubeconfig', cluster.kubeconfigPath, '--namespace', namespace, '--workload', 'deployment/web', '--run-id', id, '--timeout', '60s',
        '--', 'sh', '-c', 'while [ ! -f "$GATE" ]; do sleep 0.1; done; exit "$(cat "$GATE")"',
      ], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GATE: gate, KEELSON_LOG_LEVEL: 'warn' } });
      ciChildren.add(child);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
        ciChildren.delete(child);
        resolve(code);
      }));
      await until(async () => {
        if (child.exitCode !== null) throw new Error(`keelson ci exited early (${child.exitCode}): ${stderr}`);
        const minio = await apps.readNamespacedDeployment({ name: 'minio', namespace });
        return (minio.status?.readyReplicas ?? 0) >= 1 && minio.metadata?.annotations?.['keelson.dev/leases']?.includes(id);
      }, `keelson ci ${id} to hold minio`, 120_000);
      // The daemon learns of it through its watch of the workloads, a moment after the API.
      await until(async () => {
        const seen = (await api<Array<{ key: string; readyReplicas: number; holders?: string[] }>>('/api/dependencies')).find((d) => d.key.endsWith('/minio'));
        const web = (await api<Array<{ key: string; heldBy?: string[] }>>('/api/workloads')).find((w) => w.key.endsWith('/web'));
        return seen && seen.readyReplicas >= 1 && seen.holders?.includes(id) && web?.heldBy?.includes(id);
      }, `the daemon to see ${id} holding minio and web`);
      return {
        id,
        finish: async (exitCode) => {
          await writeFile(gate, String(exitCode));
          return exited;
        },
      };
    };
    return { daemon, cluster, registry, namespace, stateDir, repository, first, rolled, apps, api, commit, startCi, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
