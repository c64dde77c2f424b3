/**
 * A test cluster with a REAL node beside the kwok fake ones: pods scheduled there run real
 * containers (containerd + runc from Debian, CNI bridge from containernetworking-plugins, a
 * kubelet built from the same k8s.io/kubernetes module as the API server). Everything runs inside
 * a network namespace the harness creates (this machine allows traffic only to loopback and to
 * namespaces a test made) and removes:
 *
 *   netns keelson-node-XXXXXX      bridge br0 10.99.0.2/24 ({@link NODE_IP}), default route on it
 *   ├─ etcd, kube-apiserver, controller-manager, scheduler, kwok (kwokctl, bound to 0.0.0.0)
 *   ├─ docker-registry on :5000 ({@link NODE_REGISTRY}), seeded with the images of
 *   │  test/cluster/ensure-images.sh (pause, busybox, buildah; with `images: ['deps', 'ci']`
 *   │  also RabbitMQ, s3rver, a node base for CI pods), built here and cached
 *   └─ containerd, kubelet and kube-proxy (Service cluster IPs work from pods), in a private
 *      mount namespace of their own: every mount they make (pod volumes, rootfs, shm, pod network
 *      namespaces under /run/netns, CNI state under /var/lib/cni) vanishes with their last
 *      process, even after a kill -9
 *
 * From this process (outside the namespace) the API server and the registry are reached through
 * forwarders on 127.0.0.1 (socat to a unix socket, socat inside the namespace to the port):
 * `cluster.kubeconfigPath` and `registryHost` work from the host; code that should see the
 * cluster's own network (keelson's CLI, a builder talking to 10.99.0.2:5000) runs through
 * {@link RealNodeCluster.inNetns}.
 *
 * containerd mirrors docker.io, quay.io, gcr.io and registry.k8s.io to the test registry, so stock
 * image names (`busybox:1.36`, `quay.io/buildah/stable:v1.38`) run unchanged. The real node is
 * labelled {@link REAL_NODE_LABEL}=real; the fake nodes carry the taint {@link FAKE_NODE_TAINT}, so
 * pods without a toleration (everything keelson creates) run on the real node.
 *
 * stop() kills every process of the cluster (by command line, working directory, network
 * namespace or cgroup), removes the namespaces, cgroups and the temp dir; {@link leftovers}
 * says what is left and must be empty afterwards. A run killed before stop() is reaped by the
 * next start (its owner pid is gone).
 *
 * Needs root, the binaries of test/cluster/ensure-binaries.sh (kubelet included) and the Debian
 * packages containerd, runc, containernetworking-plugins, socat, mmdebstrap, docker-registry
 * (scripts/install-deps.sh --test).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clusterProcesses, deleteClusterIn, ensureClusterBinaries, eventually, isAlive, lastLineOf, startCluster, type RunningCluster } from './cluster.js';
import { freePort } from './registry.js';

const execFileAsync = promisify(execFile);

export const NODE_IP = '10.99.0.2';
/** The test registry as pods and the node's containerd see it (plain HTTP). */
export const NODE_REGISTRY = `${NODE_IP}:5000`;
/** A registry config (`--registry-config`) for the test registry: plain HTTP on a non-loopback address. */
export const NODE_REGISTRY_CONFIG = `"${NODE_REGISTRY}":\n  ".*":\n    security:\n      tls: { client: { disabled: true } }\n`;
export const REAL_NODE_NAME = 'keelson-real-node';
export const REAL_NODE_LABEL = 'keelson.dev/node';
export const FAKE_NODE_TAINT = { key: 'keelson.dev/fake-node', value: 'true', effect: 'NoSchedule' } as const;
/** Registries whose images containerd pulls from the test registry instead. */
export const MIRRORED_REGISTRIES = ['docker.io', 'quay.io', 'gcr.io', 'registry.k8s.io'] as const;

const ENSURE_IMAGES = fileURLToPath(new URL('../cluster/ensure-images.sh', import.meta.url));
const KEELSON_IMAGE = fileURLToPath(new URL('../cluster/keelson-image.sh', import.meta.url));
const TEMP_PREFIX = 'keelson-node-';
const POD_SUBNET = '10.88.0.0/16';

export interface StartRealNodeOptions {
  /** Where everything lives; must not exist or be empty. @default a new dir /tmp/keelson-node-XXXXXX */
  readonly dir?: string;
  /** Network namespace and cluster name. @default the temp dir's name, keelson-node-XXXXXX */
  readonly name?: string;
  /** Fake nodes beside the real one (tainted). @default 1 */
  readonly fakeNodes?: number;
  /**
   * Run the cluster agent (volumes for PVCs) in this process; test/cluster/cli.ts runs it in a
   * process of its own. @default true
   */
  readonly agent?: boolean;
  /** Where the forwarders listen on the host. @default free ports */
  readonly apiserverPort?: number;
  readonly registryPort?: number;
  /** More image sets to seed the registry with, besides `node`. @default none */
  readonly images?: readonly Exclude<ImageSet, 'node'>[];
}

export interface RealNodeCluster {
  /** The cluster; its kubeconfigPath and kubectl work from this process (through a forwarder). */
  readonly cluster: RunningCluster;
  readonly dir: string;
  /** Network namespace name (`/var/run/netns/<netns>`) */
  readonly netns: string;
  /** `127.0.0.1:PORT`: the test registry from the host (push images here; plain HTTP). */
  readonly registryHost: string;
  /** Command prefix that runs a command inside the cluster's network namespace. */
  inNetns(command: readonly string[]): string[];
  /**
   * Pulls images into the node's containerd now, through the mirrors the kubelet uses (names as
   * pods write them), so pods that need them later start without waiting for the pull.
   */
  pull(images: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Image sets of ensure-images.sh: `node` (every cluster), `deps` (RabbitMQ, s3rver), `ci` (node + keelson's dependencies). */
export type ImageSet = 'node' | 'deps' | 'ci';

const images = new Map<ImageSet, Promise<string>>();

/** Runs ensure-images.sh for one set once per process; resolves to the registry storage holding the images. */
export function ensureNodeImages(set: ImageSet = 'node'): Promise<string> {
  let built = images.get(set);
  if (!built) {
    built = lastLineOf(ENSURE_IMAGES, [set]);
    built.catch(() => images.delete(set));
    images.set(set, built);
  }
  return built;
}

/**
 * keelson's own image, built from the project's Dockerfile by test/cluster/keelson-image.sh (its
 * layers cached between runs) and pushed to the cluster's registry as `repository:tag`. Resolves
 * to the image as pods name it, by tag and by digest.
 */
export async function buildKeelsonImage(node: RealNodeCluster, repositoryTag = 'keelson/keelson:test'): Promise<{ image: string; digest: string }> {
  const digest = await lastLineOf(KEELSON_IMAGE, [node.registryHost, repositoryTag]);
  return { image: `${NODE_REGISTRY}/${repositoryTag}`, digest };
}

export async function startRealNodeCluster(options: StartRealNodeOptions = {}): Promise<RealNodeCluster> {
  if (process.getuid?.() !== 0) throw new Error('a real node needs root (network namespaces, containerd, kubelet)');
  await reapAbandonedRealNodes();
  const [{ binDir }, seed, ...extraSeeds] = await Promise.all([
    ensureClusterBinaries(), ensureNodeImages(), ...(options.images ?? []).map((set) => ensureNodeImages(set)),
  ]);
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), TEMP_PREFIX));
  await mkdir(join(dir, 'logs'), { recursive: true });
  const name = options.name ?? basename(dir);
  await writeFile(join(dir, 'owner.pid'), `${process.pid}\n`);
  await writeFile(join(dir, 'netns'), `${name}\n`);
  const netnsPath = `/var/run/netns/${name}`;
  const inNetns = (command: readonly string[]) => ['nsenter', `--net=${netnsPath}`, ...command];
  let cluster: RunningCluster | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await cluster?.stop().catch(() => undefined);
    await teardown(dir, name);
    if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
  };

  try {
    await makeNetns(name);
    // The mount namespace containerd and the kubelet share; `sleep` holds it open.
    const holder = daemon(dir, 'holder', inNetns(['unshare', '--mount', '--propagation', 'private', '--',
      'sh', '-c', 'mount -t tmpfs tmpfs /run/netns && mkdir -p /var/lib/cni && mount -t tmpfs tmpfs /var/lib/cni && exec sleep 2147483647'])).pid!;
    // sh mounts the tmpfs dirs, then becomes sleep: from then on the namespace is ready.
    await eventually(async () => {
      if (!(await readFile(`/proc/${holder}/cmdline`, 'utf8')).startsWith('sleep')) throw new Error('mount namespace not ready');
    }, 10_000);
    const inNode = (command: readonly string[]) => ['nsenter', `--target=${holder}`, '--net', '--mount', ...command];

    await execFileAsync('cp', ['-a', seed, join(dir, 'registry-data')]);
    // Registry storages merge by copying: blobs are named by digest, repositories by name.
    for (const extra of extraSeeds) await execFileAsync('cp', ['-a', `${extra}/.`, join(dir, 'registry-data')]);
    await writeFile(join(dir, 'registry.yml'), [
      'version: 0.1',
      'log: { level: warn, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'registry-data'))} }, delete: { enabled: true } }`,
      'http: { addr: "0.0.0.0:5000", secret: keelson-test }',
      '',
    ].join('\n'));
    daemon(dir, 'registry', inNetns(['docker-registry', 'serve', join(dir, 'registry.yml')]));
    const registryHost = `127.0.0.1:${await forward(dir, 'registry', inNetns, 5000, options.registryPort)}`;

    const started = startCluster({
      workdir: join(dir, 'kwok'),
      name,
      nodes: options.fakeNodes ?? 1,
      netns: name,
      fakeNodeTaints: [FAKE_NODE_TAINT],
      agent: options.agent ?? true,
      reachApiserver: async (inner) => {
        const text = await readFile(inner, 'utf8');
        const port = Number(/server: https:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
        if (!port) throw new Error(`no API server port in ${inner}`);
        const hostPort = await forward(dir, 'apiserver', inNetns, port, options.apiserverPort);
        const outer = join(dir, 'kubeconfig.yaml');
        await writeFile(outer, text.replace(`https://127.0.0.1:${port}`, `https://127.0.0.1:${hostPort}`));
        return outer;
      },
    });
    await startContainerd(dir, inNode);
    cluster = await started;
    await startKubelet(dir, name, binDir, cluster.innerKubeconfigPath, inNode);
    await startKubeProxy(dir, binDir, cluster.innerKubeconfigPath, inNode);
    const c = cluster;
    await eventually(() => c.kubectl(['wait', '--for=condition=Ready', `node/${REAL_NODE_NAME}`, '--timeout=5s']), 120_000);
    const pull = async (refs: readonly string[]): Promise<void> => {
      const containerd = join(dir, 'containerd');
      // one at a time: unpacking is CPU-bound, and each finished pull helps the next pod
      for (const ref of refs) {
        const [file, ...args] = inNetns(['ctr', '--address', join(containerd, 'containerd.sock'), '--namespace', 'k8s.io',
          'images', 'pull', '--hosts-dir', join(containerd, 'certs.d'), ref]);
        await execFileAsync(file!, args, { maxBuffer: 64 * 1024 * 1024 });
      }
    };
    return { cluster, dir, netns: name, registryHost, inNetns, pull, stop };
  } catch (error) {
    const logs = await logTails(dir);
    await stop();
    throw new Error(`real node did not start: ${String(error)}${logs}`, { cause: error });
  }
}

async function makeNetns(name: string): Promise<void> {
  const ip = (...args: string[]) => execFileAsync('ip', args);
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
  // The kubelet refuses a loopback node IP; this kernel has no `dummy` links, a bridge does.
  await ip('-n', name, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', name, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'br0');
  await ip('-n', name, 'link', 'set', 'br0', 'up');
  // Without a default route kube-apiserver finds no address to advertise and never starts.
  await ip('-n', name, 'route', 'add', 'default', 'dev', 'br0');
}

/** Starts a long-running process detached (it outlives a `cluster:up`), output to logs/<what>.log. */
function daemon(dir: string, what: string, command: readonly string[]): ChildProcess {
  const log = openSync(join(dir, 'logs', `${what}.log`), 'a');
  const [file, ...args] = command;
  try {
    // cwd: the cluster's processes are found by their working directory too.
    const child = spawn(file!, args, { cwd: dir, detached: true, stdio: ['ignore', log, log] });
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/**
 * 127.0.0.1:<host port> on the host → `port` on 127.0.0.1 inside the namespace, through a unix
 * socket (the file system is shared, the network is not). Resolves to the host port.
 */
async function forward(dir: string, what: string, inNetns: (c: readonly string[]) => string[], port: number, hostPort?: number): Promise<number> {
  const socket = join(dir, `${what}.sock`);
  daemon(dir, `forward-${what}-in`, inNetns(['socat', `UNIX-LISTEN:${socket},fork,unlink-early`, `TCP:127.0.0.1:${port}`]));
  await eventually(() => stat(socket), 10_000);
  for (let attempt = 0; ; attempt++) {
    const chosen = hostPort ?? await freePort();
    const child = daemon(dir, `forward-${what}`, ['socat', `TCP-LISTEN:${chosen},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`]);
    await sleep(200);
    if (child.exitCode === null && child.signalCode === null) return chosen;
    // another process took the port between the probe and socat's bind
    if (hostPort !== undefined || attempt >= 3) throw new Error(`cannot forward ${what} on 127.0.0.1:${chosen}`);
  }
}

async function startContainerd(dir: string, inNode: (c: readonly string[]) => string[]): Promise<void> {
  const c = join(dir, 'containerd');
  await mkdir(join(c, 'certs.d'), { recursive: true });
  await mkdir(join(dir, 'cni'), { recursive: true });
  for (const host of [...MIRRORED_REGISTRIES, NODE_REGISTRY]) {
    await mkdir(join(c, 'certs.d', host), { recursive: true });
    await writeFile(join(c, 'certs.d', host, 'hosts.toml'), [
      `server = ${JSON.stringify(host === NODE_REGISTRY ? `http://${NODE_REGISTRY}` : `https://${host}`)}`,
      `[host."http://${NODE_REGISTRY}"]`,
      '  capabilities = ["pull", "resolve"]',
      '  skip_verify = true',
      '',
    ].join('\n'));
  }
  await writeFile(join(dir, 'cni', '10-keelson.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: 'keelson',
    plugins: [
      {
        type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'cni-ipam') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
    ],
  }, null, 2));
  const toml = (s: string) => JSON.stringify(s);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  await writeFile(join(c, 'config.toml'), [
    'version = 2',
    `root = ${toml(join(c, 'root'))}`,
    `state = ${toml(join(c, 'state'))}`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
    '[grpc]',
    `  address = ${toml(join(c, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${toml(join(c, 'containerd.sock.ttrpc'))}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${toml(join(c, 'opt'))}`,
    `[${cri}]`,
    '  sandbox_image = "registry.k8s.io/pause:3.10.2"',
    // This VM denies a negative oom_score_adj even to root; without this every sandbox fails.
    '  restrict_oom_score_adj = true',
    `[${cri}.containerd]`,
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${toml(join(dir, 'cni'))}`,
    `[${cri}.registry]`,
    `  config_path = ${toml(join(c, 'certs.d'))}`,
    '',
  ].join('\n'));
  daemon(dir, 'containerd', inNode(['containerd', '--config', join(c, 'config.toml')]));
  await eventually(() => execFileAsync('ctr', ['--address', join(c, 'containerd.sock'), 'version']), 30_000);
}

async function startKubelet(dir: string, name: string, binDir: string, kubeconfig: string,
  inNode: (c: readonly string[]) => string[]): Promise<void> {
  const k = join(dir, 'kubelet');
  await mkdir(k, { recursive: true });
  // Pods' cgroups go under a root of their own, which teardown removes.
  for (const hierarchy of await cgroupHierarchies()) await mkdir(join(hierarchy, name), { recursive: true });
  await writeFile(join(k, 'config.yaml'), JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${name}`,
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${join(dir, 'containerd', 'containerd.sock')}`,
    enforceNodeAllocatable: [],
    evictionHard: { 'nodefs.available': '1%', 'imagefs.available': '1%', 'memory.available': '50Mi' },
    imageGCHighThresholdPercent: 99,
    imageGCLowThresholdPercent: 98,
    address: '0.0.0.0',
    readOnlyPort: 0,
    podLogsDir: join(dir, 'pod-logs'),
    serializeImagePulls: false,
    // A test cluster: the kwok API server presents no kubelet client certificate.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
  }, null, 2));
  daemon(dir, 'kubelet', inNode([join(binDir, 'kubelet'),
    '--config', join(k, 'config.yaml'),
    '--kubeconfig', kubeconfig,
    '--root-dir', join(k, 'root'),
    '--cert-dir', join(k, 'pki'),
    '--hostname-override', REAL_NODE_NAME,
    '--node-ip', NODE_IP,
    '--node-labels', `${REAL_NODE_LABEL}=real`,
  ]));
}

/**
 * kube-proxy in iptables mode, so Service cluster IPs work from pods (a dependency's
 * KEELSON_DEP_<NAME>_HOST, say). Its rules live in the cluster's network namespace and go with it.
 * masqueradeAll: a pod reaching a Service whose endpoint sits on the same bridge gets the reply
 * through the node (where the DNAT is undone), whatever br_netfilter says in this namespace.
 */
async function startKubeProxy(dir: string, binDir: string, kubeconfig: string, inNode: (c: readonly string[]) => string[]): Promise<void> {
  const config = join(dir, 'kube-proxy.yaml');
  await writeFile(config, JSON.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig },
    hostnameOverride: REAL_NODE_NAME,
    mode: 'iptables',
    clusterCIDR: POD_SUBNET,
    iptables: { masqueradeAll: true },
    // 0: leave the conntrack sysctls alone (some are not per network namespace).
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  }, null, 2));
  daemon(dir, 'kube-proxy', inNode([join(binDir, 'kube-proxy'), '--config', config]));
}

/** Where the cgroup hierarchies are mounted (v1 controllers and the unified one). */
async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  const found = new Set<string>();
  for (const line of mounts.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const fstype = after.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') found.add(unescapeMount(before.split(' ')[4]!));
  }
  return [...found];
}

function unescapeMount(path: string): string {
  return path.replace(/\\(\d{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** What a real-node cluster in `dir` (network namespace `name`) left behind; all empty when clean. */
export async function leftovers(dir: string, name: string): Promise<{ processes: number[]; mounts: string[]; netns: string[]; cgroups: string[] }> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''))
    .filter((point) => point === dir || point.startsWith(`${dir}/`) || point === `/run/netns/${name}`);
  const netns = (await readdir('/var/run/netns').catch(() => [] as string[])).filter((n) => n === name);
  const cgroups: string[] = [];
  for (const hierarchy of await cgroupHierarchies()) {
    if (await stat(join(hierarchy, name)).then(() => true, () => false)) cgroups.push(join(hierarchy, name));
  }
  return { processes: await nodeProcesses(dir, name), mounts, netns, cgroups };
}

/**
 * The cluster's processes: those clusterProcesses() finds (command line or working directory under
 * `dir`), plus those inside its network namespace or its pods' cgroups (containers, whose
 * command lines and directories say nothing about the test).
 */
async function nodeProcesses(dir: string, name: string): Promise<number[]> {
  const found = new Set(await clusterProcesses(dir));
  const nsInode = await stat(`/var/run/netns/${name}`).then((s) => `net:[${s.ino}]`, () => undefined);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (nsInode && await readlink(`/proc/${entry}/ns/net`) === nsInode) found.add(Number(entry));
      else if ((await readFile(`/proc/${entry}/cgroup`, 'utf8')).includes(`/${name}/`)) found.add(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  // A container's processes end up children of PID 1 once their shim is gone; until PID 1 reaps
  // them they are zombies: ended, holding nothing but their PID.
  const alive: number[] = [];
  for (const pid of found) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat && !/\) Z /.test(stat)) alive.push(pid);
  }
  return alive;
}

/**
 * Ends everything of the cluster: its processes (SIGKILL: containerd's and the kubelet's mounts
 * live in their own mount namespace and go with it), the network namespace, the pods' cgroups.
 */
async function teardown(dir: string, name: string): Promise<void> {
  for (let attempt = 0; attempt < 150; attempt++) {
    const left = await nodeProcesses(dir, name);
    if (left.length === 0) break;
    for (const pid of left) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await sleep(100);
  }
  await execFileAsync('ip', ['netns', 'delete', name]).catch(() => undefined);
  for (const hierarchy of await cgroupHierarchies()) {
    const root = join(hierarchy, name);
    // rmdir, deepest first: a cgroup directory goes only once it has no children and no tasks.
    await execFileAsync('find', [root, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']).catch(() => undefined);
  }
  const left = await leftovers(dir, name);
  if (left.processes.length + left.mounts.length + left.netns.length + left.cgroups.length > 0) {
    const described = await Promise.all(left.processes.map(async (pid) => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      return `${pid} ${/^Name:\s*(.*)$/m.exec(status)?.[1] ?? '?'} ${/^State:\s*(.*)$/m.exec(status)?.[1] ?? '?'} ppid ${/^PPid:\s*(.*)$/m.exec(status)?.[1] ?? '?'}`;
    }));
    throw new Error(`the real node in ${dir} left things behind: ${JSON.stringify({ ...left, processes: described })}`);
  }
}

/** Stops the real-node cluster `name` in `dir` that another process started (test/cluster/cli.ts). */
export async function deleteRealNodeIn(dir: string, name: string): Promise<void> {
  await deleteClusterIn(join(dir, 'kwok'), name).catch(() => undefined);
  await teardown(dir, name);
}

/** Real-node clusters in temp dirs whose owning process is gone (a killed test run). */
export async function reapAbandonedRealNodes(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(TEMP_PREFIX))) {
    const dir = join(tmpdir(), entry);
    const owner = Number((await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => '')).trim());
    if (owner && isAlive(owner)) continue;
    const name = (await readFile(join(dir, 'netns'), 'utf8').catch(() => entry)).trim();
    await teardown(dir, name).catch((error: unknown) => process.stderr.write(`real node: reaping ${dir}: ${String(error)}\n`));
    await rm(dir, { recursive: true, force: true });
  }
  // a namespace whose directory is already gone
  for (const name of await readdir('/var/run/netns').catch(() => [] as string[])) {
    if (name.startsWith(TEMP_PREFIX) && !entries.includes(name)) {
      await teardown(join(tmpdir(), name), name).catch(() => undefined);
    }
  }
}

async function logTails(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const file of await readdir(join(dir, 'logs')).catch(() => [] as string[])) {
    const text = await readFile(join(dir, 'logs', file), 'utf8').catch(() => '');
    if (text.trim()) parts.push(`\n--- ${file} (last lines)\n${text.trim().split('\n').slice(-8).join('\n')}`);
  }
  return parts.join('');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
