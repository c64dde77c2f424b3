/**
 * A real Kubernetes API for integration tests: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler (built from the versions pinned in test/cluster/versions.env), with kwok
 * simulating the nodes and the pods' kubelets. `kwokctl --runtime binary` starts the processes on
 * 127.0.0.1 with random ports in a temp dir; nothing is downloaded at run time and
 * ~/.kube/config is never touched. RBAC and the default admission plugins are on.
 *
 *   const cluster = await startCluster();     // or `await sharedCluster()` (one per mocha process)
 *   const kc = cluster.kubeConfig();          // @kubernetes/client-node, admin (system:masters)
 *   await cluster.kubectl(['get', 'nodes']);
 *   after(() => cluster.stop());              // kwokctl delete, kill leftovers, remove the temp dir
 *
 * What the pods do (kwok stages, from kwok's own defaults plus one chaos stage):
 * - every pod is scheduled onto one of two fake nodes and goes Pending -> Running (ready) at once;
 * - a Running pod owned by a Job goes Succeeded with exit code 0; a Deployment's pods stay Running;
 * - a pod labelled `pod-container-running-failed.stage.kwok.x-k8s.io=true` (put it on the Job's pod
 *   template) goes Failed about a second after Running; annotations with the same prefix and
 *   `/exit-code`, `/reason`, `/message`, `/container-name` set the details ({@link FAIL_POD_LABEL});
 * - deleted pods go away (finalizers cleared).
 * - `kubectl logs` / readNamespacedPodLog return the lines of {@link RunningCluster.writePodLogs}
 *   for every pod and container.
 * - `kubectl exec` / the client's `Exec` run the command on THIS host, in
 *   `execDirFor(namespace)` (a directory per namespace, see cluster-agent.ts). kwok never closes
 *   the command's stdin, so a command that reads stdin must stop on its own (`head -c N`).
 * - PVCs of the default StorageClass `keelson-local` are bound to a hostPath PV under the temp dir.
 *
 * Needs the binaries built by test/cluster/ensure-binaries.sh (Go >= 1.26 to build them; they are
 * cached under ~/.cache/keelson-test-cluster, so CI should run that script once before the tests).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { STORAGE_CLASS, PROVISIONER, startClusterAgent, type ClusterAgent } from './cluster-agent.js';

const execFileAsync = promisify(execFile);

/** Label that makes kwok fail a Running pod (kwok's `pod-container-running-failed` stage). */
export const FAIL_POD_LABEL = 'pod-container-running-failed.stage.kwok.x-k8s.io';

/**
 * The cluster IP of the `kubernetes` Service: the first address of kube-apiserver's service range,
 * set explicitly below (it is also kube-apiserver's default).
 */
export const KUBERNETES_SERVICE_IP = '10.0.0.1';
const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

const ENSURE_BINARIES = fileURLToPath(new URL('../cluster/ensure-binaries.sh', import.meta.url));
const TEMP_PREFIX = 'keelson-kwok-';

export interface ClusterBinaries {
  /** kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl */
  readonly binDir: string;
  /** kwok's stage definitions of the pinned version (copied by ensure-binaries.sh) */
  readonly stagesDir: string;
}

export interface StartClusterOptions {
  /** Fake nodes to create. @default 2 */
  readonly nodes?: number;
  /** KWOK_WORKDIR; must not exist or be empty. @default a new temp dir, removed by stop() */
  readonly workdir?: string;
  /** Cluster name. @default `keelson-<pid>-<random>` */
  readonly name?: string;
  /**
   * Run the exec-rule and volume agent in this process. Turn it off only when another process
   * runs it (test/cluster/cli.ts does, for a cluster that outlives the command). @default true
   */
  readonly agent?: boolean;
  /**
   * Run the cluster's processes inside this network namespace (`/var/run/netns/<name>`), bound to
   * every address in it, so pods of a real node in the same namespace reach the API server
   * (test/support/real-node.ts). @default none: the host's loopback
   */
  readonly netns?: string;
  /**
   * Given the kubeconfig that works inside `netns`, makes the API server reachable from this
   * process and returns a kubeconfig for that. Needed with `netns`.
   */
  readonly reachApiserver?: (innerKubeconfigPath: string) => Promise<string>;
  /** Taints of the fake nodes (a real node beside them keeps the untainted default). @default none */
  readonly fakeNodeTaints?: ReadonlyArray<{ key: string; value?: string; effect: string }>;
  /**
   * Requests a second the controller manager may send (`--kube-api-qps`, burst twice that). At its
   * default of 20 it needs over 15 minutes to write the ReplicaSets and status of 10,000 new
   * Deployments; a benchmark that wants a settled cluster raises it. @default the controller manager's
   */
  readonly controllerManagerQps?: number;
}

export interface RunningCluster {
  readonly name: string;
  /** Admin kubeconfig (`https://127.0.0.1:<port>`, client certificate in system:masters) */
  readonly kubeconfigPath: string;
  /** The kubeconfig kwokctl wrote; differs from kubeconfigPath only for a cluster in a netns */
  readonly innerKubeconfigPath: string;
  /** KWOK_WORKDIR of this cluster; every process of the cluster has it in its command line */
  readonly workdir: string;
  readonly binDir: string;
  /** A fresh KubeConfig loaded from kubeconfigPath */
  kubeConfig(): KubeConfig;
  /** Runs the pinned kubectl against this cluster; resolves to stdout, rejects with stderr. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** The host directory that `exec` into any pod of `namespace` runs in (made on demand). */
  execDirFor(namespace: string): Promise<string>;
  /** Sets what every container's log shows (kwok serves one CRI-format file for all of them). */
  writePodLogs(lines: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

let binaries: Promise<ClusterBinaries> | undefined;

/** Runs ensure-binaries.sh once per process (it builds only what is missing). */
export function ensureClusterBinaries(): Promise<ClusterBinaries> {
  binaries ??= lastLineOf(ENSURE_BINARIES).then((binDir) => ({ binDir, stagesDir: join(binDir, '..', 'stages') }));
  binaries.catch(() => { binaries = undefined; });
  return binaries;
}

/** Runs one of the test/cluster/ensure-*.sh scripts; resolves to the last line it prints (a path). */
export function lastLineOf(script: string, args: readonly string[] = []): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    // stderr goes through: a cold build takes many minutes and says so.
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('error', reject);
    // close, not exit: output can still be in the pipe when the exit is seen
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line) reject(new Error(`${script} exited with ${code}: ${out.trim()}`));
      else resolve(line);
    });
  });
}

export async function startCluster(options: StartClusterOptions = {}): Promise<RunningCluster> {
  await reapAbandonedClusters();
  try {
    return await startOnce(options);
  } catch (error) {
    // kwokctl picks free ports by probing; another cluster starting at the same moment on this
    // machine can take one first. A second try gets new ports.
    process.stderr.write(`test cluster: first start failed, trying once more: ${String(error)}\n`);
    return startOnce(options);
  }
}

async function startOnce(options: StartClusterOptions): Promise<RunningCluster> {
  const { binDir, stagesDir } = await ensureClusterBinaries();
  const ownWorkdir = options.workdir === undefined;
  const workdir = options.workdir ?? await mkdtemp(join(tmpdir(), TEMP_PREFIX));
  await mkdir(workdir, { recursive: true });
  const name = options.name ?? `keelson-${process.pid}-${randomBytes(3).toString('hex')}`;
  const env = clusterEnv(binDir, workdir);
  const innerKubeconfigPath = join(workdir, 'clusters', name, 'kubeconfig.yaml');
  let kubeconfigPath = innerKubeconfigPath;
  // nsenter, not `ip netns exec`: that one remounts /sys, and a kubelet beside it finds no cgroups.
  const inNetns = options.netns ? ['nsenter', `--net=/var/run/netns/${options.netns}`] : [];
  const logsFile = join(workdir, 'pod.log');
  let agent: ClusterAgent | undefined;

  const kubectl = async (args: readonly string[], input?: string): Promise<string> =>
    run(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfigPath, ...args], env, input);

  const writePodLogs = async (lines: readonly string[]): Promise<void> => {
    const stamp = new Date().toISOString().replace(/\.(\d+)Z$/, (_m, ms: string) => `.${ms.padEnd(9, '0')}Z`);
    // CRI log format: time, stream, F (a full line), text. kwok rejects plain text.
    await writeFile(logsFile, lines.map((line) => `${stamp} stdout F ${line}\n`).join(''));
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await agent?.stop();
    await deleteCluster(binDir, workdir, name);
    if (ownWorkdir) await rm(workdir, { recursive: true, force: true });
  };

  try {
    await writeFile(join(workdir, 'owner.pid'), `${process.pid}\n`);
    await writePodLogs(['keelson test cluster: container log line']);
    const configPath = join(workdir, 'kwok-config.yaml');
    await writeFile(configPath, await kwokConfig(binDir, stagesDir, logsFile, options.netns ? '0.0.0.0' : '127.0.0.1'));
    const [file, ...prefix] = [...inNetns, join(binDir, 'kwokctl')];
    await run(file!, [
      ...prefix,
      '--name', name, 'create', 'cluster',
      '--runtime', 'binary',
      '--config', configPath,
      // empty: do not merge a context into ~/.kube/config
      '--kubeconfig=',
      '--wait', '120s',
      `--extra-args=kube-apiserver=service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      ...(options.controllerManagerQps ? [
        `--extra-args=kube-controller-manager=kube-api-qps=${options.controllerManagerQps}`,
        `--extra-args=kube-controller-manager=kube-api-burst=${2 * options.controllerManagerQps}`,
      ] : []),
      // kwok leaves nodes without the fake-node annotation (a real kubelet's) alone. Node names
      // resolve nowhere, so the API server dials nodes by address: the real node's, or 127.0.0.1
      // (in the namespace) where kwok serves the fake nodes' logs and exec.
      ...(options.netns ? [
        '--extra-args=kwok-controller=manage-all-nodes=false',
        '--extra-args=kwok-controller=manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--extra-args=kwok-controller=node-ip=127.0.0.1',
        '--extra-args=kube-apiserver=kubelet-preferred-address-types=InternalIP',
      ] : []),
    ], env);
    if (options.netns) {
      if (!options.reachApiserver) throw new Error('startCluster: netns needs reachApiserver');
      kubeconfigPath = await options.reachApiserver(innerKubeconfigPath);
    }
    await eventually(() => kubectl(['apply', '-f', '-'], clusterObjects(options.nodes ?? 2, options.fakeNodeTaints ?? [])));
    if ((options.nodes ?? 2) > 0) await kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=60s']);
    // With admission on, pods need the namespace's default ServiceAccount, which the controller
    // manager creates a moment after the namespace.
    await eventually(() => kubectl(['get', 'serviceaccount', 'default', '-n', 'default']));
    if (options.agent ?? true) {
      agent = startClusterAgent(kubeconfigPath, workdir);
      await eventually(() => agent!.execDirFor('default'));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    name,
    kubeconfigPath,
    innerKubeconfigPath,
    workdir,
    binDir,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
    kubectl,
    async execDirFor(namespace) {
      if (!agent) throw new Error('this cluster runs no agent in this process; exec dirs are in <workdir>/ns/<namespace>/exec');
      return agent.execDirFor(namespace);
    },
    writePodLogs,
    stop,
  };
}

let shared: Promise<RunningCluster> | undefined;
const SHARED_SLOT = Symbol.for('keelson.test.sharedCluster');

/**
 * One cluster for the whole mocha process, started on first use and stopped by the root
 * `afterAll` hook of test/support/cluster-hooks.ts. Tests that share it must use their own
 * namespaces and not rely on the pod log text.
 */
export function sharedCluster(): Promise<RunningCluster> {
  const slot = (globalThis as Record<symbol, { stop?: () => Promise<void> } | undefined>)[SHARED_SLOT];
  if (!slot) {
    // Without the hook nobody would stop the cluster, and its watches would keep mocha alive.
    return Promise.reject(new Error('sharedCluster() needs the mocha root hooks: add "test/support/cluster-hooks.ts" to "require" in .mocharc.json'));
  }
  slot.stop = stopSharedCluster;
  shared ??= startCluster();
  shared.catch(() => { shared = undefined; });
  return shared;
}

export async function stopSharedCluster(): Promise<void> {
  const cluster = shared;
  shared = undefined;
  if (cluster) await (await cluster.catch(() => undefined))?.stop();
}

/**
 * Processes that belong to the cluster in `workdir`: the ones with the workdir in their command
 * line (etcd, the kube-* components and kwok all run from `<workdir>/clusters/<name>/bin`) or
 * running in a directory under it (commands started by `exec` into a pod).
 */
export async function clusterProcesses(workdir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
      if (cmdline.includes(workdir) || cwd === workdir || cwd.startsWith(`${workdir}/`)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

function clusterEnv(binDir: string, workdir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KWOK_WORKDIR: workdir,
    KWOK_RUNTIME: 'binary',
    // kwokctl looks kubectl up in PATH and would download it otherwise.
    KWOK_KUBECTL_BINARY: join(binDir, 'kubectl'),
    PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  };
  delete env.KUBECONFIG;
  return env;
}

async function kwokConfig(binDir: string, stagesDir: string, logsFile: string, bindAddress: string): Promise<string> {
  const bin = (name: string) => JSON.stringify(join(binDir, name));
  const parts = [[
    'apiVersion: config.kwok.x-k8s.io/v1alpha1',
    'kind: KwokctlConfiguration',
    'options:',
    '  runtime: binary',
    `  bindAddress: ${bindAddress}`,
    `  kubeApiserverBinary: ${bin('kube-apiserver')}`,
    `  kubeControllerManagerBinary: ${bin('kube-controller-manager')}`,
    `  kubeSchedulerBinary: ${bin('kube-scheduler')}`,
    `  kubectlBinary: ${bin('kubectl')}`,
    `  etcdBinary: ${bin('etcd')}`,
    `  kwokControllerBinary: ${bin('kwok')}`,
    // Exec rules are created per namespace at run time (cluster-agent.ts), so they come from
    // the API rather than this file; kwok takes each kind from one place only.
    '  enableCRDs: [ClusterExec]',
    // Pods reach the API server through the kubernetes Service (in-cluster config); its cluster
    // IP must be in the certificate, which kwokctl fills with the host's addresses and the
    // kubernetes.default.svc names only.
    `  kubeApiserverCertSANs: [${KUBERNETES_SERVICE_IP}]`,
  ].join('\n')];
  // Any Stage in --config replaces all of kwokctl's defaults: these are the defaults plus the
  // chaos stage that fails a labelled pod.
  for (const file of (await readdir(stagesDir)).filter((f) => f.endsWith('.yaml')).sort()) {
    parts.push((await readFile(join(stagesDir, file), 'utf8')).trim());
  }
  parts.push([
    'apiVersion: kwok.x-k8s.io/v1alpha1',
    'kind: ClusterLogs',
    'metadata:',
    '  name: keelson-logs',
    'spec:',
    '  logs:',
    `  - logsFile: ${JSON.stringify(logsFile)}`,
    // false: a follow request ends at the end of the file instead of waiting for more forever
    '    follow: false',
  ].join('\n'));
  return `${parts.join('\n---\n')}\n`;
}

/** Fake nodes (kwok manages them) and the default StorageClass the agent serves. */
function clusterObjects(nodes: number, taints: ReadonlyArray<{ key: string; value?: string; effect: string }>): string {
  const docs: string[] = [];
  for (let i = 0; i < nodes; i++) {
    docs.push(JSON.stringify({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: `kwok-node-${i}`,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: { 'kubernetes.io/hostname': `kwok-node-${i}`, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', type: 'kwok' },
      },
      ...(taints.length > 0 ? { spec: { taints } } : {}),
    }));
  }
  docs.push(JSON.stringify({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  }));
  return docs.join('\n---\n');
}

/** Deletes the cluster `name` in `workdir` and kills whatever of it is left (for test/cluster/cli.ts). */
export async function deleteClusterIn(workdir: string, name: string): Promise<void> {
  const { binDir } = await ensureClusterBinaries();
  await deleteCluster(binDir, workdir, name);
}

async function deleteCluster(binDir: string, workdir: string, name: string): Promise<void> {
  try {
    // `delete --kubeconfig=` fails ("empty path") before stopping anything, so kwokctl gets a
    // throwaway file to remove its context from; ~/.kube/config stays untouched.
    await run(join(binDir, 'kwokctl'), ['--name', name, 'delete', 'cluster', `--kubeconfig=${join(workdir, 'unused-kubeconfig')}`], clusterEnv(binDir, workdir));
  } catch (error) {
    // A half-created cluster may not delete cleanly; the kill below still ends its processes.
    process.stderr.write(`test cluster: kwokctl delete cluster ${name} failed: ${String(error)}\n`);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const left = await clusterProcesses(workdir);
    if (left.length === 0) return;
    for (const pid of left) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await sleep(100);
  }
  throw new Error(`processes of the test cluster in ${workdir} survived SIGKILL: ${(await clusterProcesses(workdir)).join(' ')}`);
}

/**
 * Clusters in temp dirs whose owning process is gone (a test run killed with SIGKILL) would run
 * forever; the next run removes them.
 */
async function reapAbandonedClusters(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(TEMP_PREFIX))) {
    const workdir = join(tmpdir(), entry);
    const owner = Number((await readFile(join(workdir, 'owner.pid'), 'utf8').catch(() => '')).trim());
    if (!owner || isAlive(owner)) continue;
    const names = await readdir(join(workdir, 'clusters')).catch(() => [] as string[]);
    const { binDir } = await ensureClusterBinaries();
    for (const name of names) await deleteCluster(binDir, workdir, name).catch(() => undefined);
    if ((await clusterProcesses(workdir)).length === 0) await rm(workdir, { recursive: true, force: true });
  }
}

/** Whether a process exists (signal 0; EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  if (input === undefined) {
    try {
      const { stdout } = await execFileAsync(file, [...args], { env, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      throw new Error(`${file} ${args.join(' ')} failed: ${(stderr || stdout || String(error)).trim()}`, { cause: error });
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')} failed: ${(stderr || stdout).trim()}`));
    });
    child.stdin.end(input);
  });
}

/**
 * Retries fn until it resolves, for up to `timeoutMs`: components that just started, and the
 * controllers acting on what a test created, answer within a second or two.
 */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
