/**
 * Rollouts at scale, end to end, as a user runs it: `keelson daemon` (a child process, dist/)
 * following N annotated Deployments (policy minor, trigger poll, `@every 30s`) over M images in K
 * namespaces of the real test cluster (kube-apiserver + kwok), against a real docker-registry
 * behind a counting proxy. Reports:
 *   - registry requests (counted at the proxy): in the first three intervals after start, per image
 *     at most (goal: one per interval), per steady interval (goal: M), start → every image polled once
 *   - push → patch through polling (median / max), registry webhook → patch (p95) for 100 Deployments
 *   - apiserver requests per minute above the no-controller baseline (apiserver_request_total)
 *   - the daemon's RSS (steady median, peak = VmHWM), heap used, CPU seconds per steady interval
 *
 *   npm run build && node --import tsx bench/rollout.bench.ts [--deployments 1000] [--images 100] [--namespaces 20]
 *       [--breakdown] [--cpu-prof DIR]
 *
 * --breakdown runs the daemon at log level debug and prints where the time went: the start-up
 * timeline (spawn, workloads listed, serving, first and last first poll) and, for the webhook
 * rollouts, each phase (webhook to registry change, wait for a turn, plan, patch, record, trace).
 * --cpu-prof DIR runs the daemon with --cpu-prof into DIR and prints the functions that took the
 * most CPU during the steady window (self time), the profile itself stays in DIR.
 *
 * The controller manager runs at 500 requests a second (its default of 20 needs over 15 minutes
 * for 10,000 new Deployments), and the bench waits until it has settled every Deployment, as in
 * a cluster that has run a while; only then are the no-controller baseline and the daemon's steady
 * window measured, so neither includes the controller manager catching up.
 *
 * Deployments have 0 replicas (kwok would otherwise run N fake pods on the same cores) and a
 * semver rollout reads its baseline from the spec's tag. Images are pushed once with buildah and
 * copied to the other repositories by blob mounts (three requests each), so 1,000 images take
 * seconds, not minutes.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { RegistryClient } from '../src/registry/index.js';
import { startCluster, type RunningCluster } from '../test/support/cluster.js';
import { pushImage } from '../test/support/images.js';
import { startRegistryProxy, type RegistryProxy } from '../test/support/registry-proxy.js';
import { startRegistry, type RunningRegistry } from '../test/support/registry.js';
import { startDaemon, stopAllDaemons, type DaemonProcess } from '../test/integration/daemon/daemon-process.js';
import { copyImage, pool, threadCpu } from './support.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
const DEPLOYMENTS = flag('deployments', 1000);
const IMAGES = flag('images', 100);
const NAMESPACES = flag('namespaces', 20);
/** The daemon runs with the NODE_OPTIONS of manifests/deployment.yaml unless --node-options says otherwise. */
const NODE_OPTIONS = (() => {
  const at = process.argv.indexOf('--node-options');
  if (at > 0) return process.argv[at + 1] ?? '';
  const manifest = readFileSync(new URL('../manifests/deployment.yaml', import.meta.url), 'utf8');
  return /name: NODE_OPTIONS, value: ([^}]+?) \}/.exec(manifest)?.[1]?.trim() ?? '';
})();
const BREAKDOWN = process.argv.includes('--breakdown');
const CPU_PROF_DIR = (() => {
  const at = process.argv.indexOf('--cpu-prof');
  return at > 0 ? process.argv[at + 1] : undefined;
})();
const INTERVAL_MS = 30_000;
const SCHEDULE = '@every 30s';
const PER_IMAGE = DEPLOYMENTS / IMAGES;
/** Images pushed for each latency measurement: 100 Deployments' worth */
const MEASURED = Math.max(1, Math.round(100 / PER_IMAGE));

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const repository = (i: number): string => `bench/image-${i}`;

function byRepository<T extends { repository: string }>(items: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const list = groups.get(item.repository);
    if (list) list.push(item);
    else groups.set(item.repository, [item]);
  }
  return [...groups.values()];
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Deployments whose controller has not yet caught up: status for an older generation, or no ReplicaSet made available yet. */
async function unsettledDeployments(apps: AppsV1Api): Promise<number> {
  let unsettled = 0;
  let next: string | undefined;
  do {
    const page = await apps.listDeploymentForAllNamespaces({ limit: 1000, ...(next ? { _continue: next } : {}) });
    for (const d of page.items) {
      const progressed = d.status?.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable');
      if (d.status?.observedGeneration !== d.metadata?.generation || !progressed) unsettled += 1;
    }
    next = page.metadata?._continue || undefined;
  } while (next);
  return unsettled;
}

/** Reads a process's RSS, peak RSS (VmHWM) and CPU seconds from /proc. */
async function processStats(pid: number): Promise<{ rss: number; hwm: number; cpu: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { rss: kib('VmRSS'), hwm: kib('VmHWM'), cpu: (Number(stat[11]) + Number(stat[12])) / 100 };
}

async function apiserverRequests(cluster: RunningCluster): Promise<number> {
  const text = await cluster.kubectl(['get', '--raw', '/metrics']);
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('apiserver_request_total{')) total += Number(line.split(' ').at(-1));
  return total;
}

async function metric(daemon: DaemonProcess, name: string): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

type Log = DaemonProcess['logs'][number];
const timeOf = (line: Log): number => (typeof line.time === 'number' ? line.time : NaN);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Where the time went: the daemon's start-up and the webhook rollouts, phase by phase. */
function printBreakdown(logs: DaemonProcess['logs'], started: number, polls: ReadonlyArray<{ at: number; repository: string }>, hookAt: number): void {
  const first = (msg: string) => logs.find((l) => l.msg === msg);
  const firstPolls = byRepository([...polls]).map((list) => list[0]!.at);
  const rows: Array<[string, string]> = [
    ['start-up: first log line', seconds(timeOf(logs[0]!) - started)],
    ['start-up: workloads listed (rollout controller started)', seconds(timeOf(first('rollout controller started')!) - started)],
    ['start-up: keelson daemon started', seconds(timeOf(first('keelson daemon started')!) - started)],
    ['start-up: first poll / every image polled', `${seconds(Math.min(...firstPolls) - started)} / ${seconds(Math.max(...firstPolls) - started)}`],
  ];
  const hooked = logs.filter((l) => timeOf(l) >= hookAt);
  const changes = hooked.filter((l) => l.msg === 'registry change').map((l) => timeOf(l) - hookAt);
  if (changes.length > 0) rows.push(['webhook -> registry change: first / median / last', [0, 0.5, 1].map((q) => seconds(quantile(changes, q))).join(' / ')]);
  const timings = hooked.filter((l) => l.msg === 'rollout timings').map((l) => l.ms as Record<string, number>);
  for (const phase of [...new Set(timings.flatMap((t) => Object.keys(t)))]) {
    const values = timings.map((t) => t[phase] ?? 0);
    rows.push([`webhook rollouts, ${phase}: median / p95 / max`, [0.5, 0.95, 1].map((q) => `${quantile(values, q)} ms`).join(' / ')]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('\nbreakdown (times from the daemon\'s spawn, or from the webhook)\n');
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The functions with the most self time in [from, to] (wall clock ms), from the profile the daemon wrote at exit. */
async function printCpuProfile(dir: string, pid: number, exitedAt: number, from: number, to: number): Promise<void> {
  const name = (await readdir(dir)).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
  if (!name) {
    console.log(`\nno CPU profile of pid ${pid} in ${dir}`);
    return;
  }
  const profile = JSON.parse(await readFile(join(dir, name), 'utf8')) as CpuProfile;
  // Profile times are µs on a monotonic clock; its end is (about) when the daemon exited.
  const wallOf = (us: number) => exitedAt - (profile.endTime - us) / 1000;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let at = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const wall = wallOf(at);
    if (wall < from || wall > to) continue;
    const frame = nodes.get(profile.samples[i]!)!.callFrame;
    if (frame.functionName === '(idle)') continue;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/')}:${frame.lineNumber + 1}`;
    const spent = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(key, (self.get(key) ?? 0) + spent);
    total += spent;
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 30);
  console.log(`\nCPU in the steady window (${((to - from) / 1000).toFixed(0)} s): ${total.toFixed(0)} ms sampled; most self time (${join(dir, name)}):\n`);
  for (const [key, ms] of top) console.log(`${ms.toFixed(0).padStart(7)} ms  ${(100 * ms / total).toFixed(1).padStart(5)} %  ${key}`);
}

let cluster: RunningCluster | undefined;
let registry: RunningRegistry | undefined;
let proxy: RegistryProxy | undefined;
let stateDir: string | undefined;
let client: RegistryClient | undefined;

async function cleanUp(): Promise<void> {
  await stopAllDaemons().catch(() => undefined);
  await client?.close().catch(() => undefined);
  await proxy?.close().catch(() => undefined);
  await registry?.stop().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));

try {
  const setupStarted = Date.now();
  [cluster, registry] = await Promise.all([startCluster({ controllerManagerQps: 500 }), startRegistry()]);
  proxy = await startRegistryProxy(registry.url);
  stateDir = await mkdtemp(join(tmpdir(), 'keelson-rollout-bench-'));
  client = new RegistryClient({ requestsPerSecond: 1000 });
  const host = registry.host;

  await pushImage(registry, 'bench/seed', '1.0.0', { content: 'bench 1.0.0' });
  await copyImage(client, host, 'bench/seed', Array.from({ length: IMAGES }, (_, i) => repository(i)), '1.0.0');

  const kc = cluster.kubeConfig();
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => `bench-${n}`);
  for (const namespace of namespaces) await core.createNamespace({ body: { metadata: { name: namespace } } });
  const bodies = Array.from({ length: DEPLOYMENTS }, (_, d): { namespace: string; image: number; body: V1Deployment } => {
    const name = `app-${d}`;
    return {
      namespace: namespaces[d % NAMESPACES]!,
      image: d % IMAGES,
      body: {
        metadata: { name, annotations: { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': SCHEDULE } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `${proxy!.host}/${repository(d % IMAGES)}:1.0.0` }] } },
        },
      },
    };
  });
  const createStarted = Date.now();
  await pool(bodies, 16, ({ namespace, body }) => apps.createNamespacedDeployment({ namespace, body }));
  const createMs = Date.now() - createStarted;

  // A cluster that has run a while: the controller manager has made every Deployment's
  // ReplicaSet and written its status. Measured before that, the daemon's "steady" window would
  // include thousands of status updates it has to read (the controller manager writes them at its
  // own pace), and the apiserver baseline would be the controller manager catching up.
  const settleStarted = Date.now();
  for (const deadline = Date.now() + 15 * 60_000; ;) {
    const unsettled = await unsettledDeployments(apps);
    if (unsettled === 0) break;
    if (Date.now() > deadline) throw new Error(`${unsettled} Deployments still without a settled status after 15 min`);
    await sleep(2_000);
  }
  const settleMs = Date.now() - settleStarted;
  // The apiserver's traffic without keelson (kwok, controller manager, scheduler).
  const baselineStart = await apiserverRequests(cluster);
  await sleep(60_000);
  const baselinePerMinute = (await apiserverRequests(cluster)) - baselineStart;

  const started = Date.now();
  const daemon = await startDaemon(['--kubeconfig', cluster.kubeconfigPath, '--state-dir', stateDir],
    { NODE_OPTIONS, ...(BREAKDOWN ? { KEELSON_LOG_LEVEL: 'debug' } : {}) },
    CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : []);
  const pid = daemon.pid;
  const rssSamples: Array<{ at: number; rss: number }> = [];
  const sampler = setInterval(() => void processStats(pid).then((s) => rssSamples.push({ at: Date.now(), rss: s.rss }), () => undefined), 500);

  /** The image repository a request is for (`bench/image-7`), or '' */
  const repositoryOf = (path: string) => /^\/v2\/(.+?)\/(?:tags|manifests|blobs)\//.exec(path)?.[1] ?? '';
  const requests = () => proxy!.seen.map((r) => ({ ...r, repository: repositoryOf(r.path) })).filter((r) => r.repository.startsWith('bench/image-'));
  const tagRequests = () => requests().filter((r) => r.at >= started && r.method === 'GET');
  // Start → every image polled once.
  let everyImageMs = NaN;
  while (Date.now() - started < 4 * INTERVAL_MS + 120_000) {
    if (new Set(tagRequests().map((r) => r.repository)).size >= IMAGES) {
      everyImageMs = Math.max(...byRepository(tagRequests()).map((list) => list[0]!.at)) - started;
      break;
    }
    await sleep(250);
  }
  // The first three intervals after start, then a steady window of two intervals.
  await sleep(Math.max(0, started + 3 * INTERVAL_MS - Date.now()));
  const first = tagRequests().filter((r) => r.at < started + 3 * INTERVAL_MS);
  const perImage = byRepository(first);
  const closestGap = Math.min(...perImage.map((list) => Math.min(Infinity, ...list.slice(1).map((r, i) => r.at - list[i]!.at))));
  const steadyStart = Date.now();
  const apiBefore = await apiserverRequests(cluster);
  const cpuBefore = (await processStats(pid)).cpu;
  const threadsBefore = await threadCpu(pid);
  await sleep(2 * INTERVAL_MS);
  const apiAfter = await apiserverRequests(cluster);
  const cpuAfter = (await processStats(pid)).cpu;
  const threadsAfter = await threadCpu(pid);
  const steadyEnd = Date.now();
  const steadyRequests = requests().filter((r) => r.at >= steadyStart && r.at < steadyStart + 2 * INTERVAL_MS);
  const heapUsed = await metric(daemon, 'keelson_nodejs_heap_size_used_bytes');
  const hwmSteady = (await processStats(pid)).hwm;
  const overruns = await metric(daemon, 'keelson_registry_cycle_overrun_total');
  const steadyRss = rssSamples.filter((s) => s.at >= steadyStart && s.at <= steadyEnd).map((s) => s.rss);

  /** Waits for the daemon's "workload image updated" line to `tag` of each expected Deployment; ms since `from` per Deployment. */
  const patchedSince = async (tag: string, expected: ReadonlyArray<{ key: string; from: number }>, limitMs: number): Promise<number[]> => {
    const deadline = Date.now() + limitMs;
    const found = new Map<string, number>();
    while (found.size < expected.length && Date.now() < deadline) {
      for (const line of daemon.logs) {
        if (line.msg === 'workload image updated' && typeof line.workload === 'string' && typeof line.time === 'number'
          && JSON.stringify(line.changes).includes(`:${tag}"`)) found.set(line.workload, line.time);
      }
      await sleep(200);
    }
    return expected.filter((e) => found.has(e.key)).map((e) => found.get(e.key)! - e.from);
  };
  const keyOf = (d: (typeof bodies)[number]) => `${d.namespace}/deployment/${d.body.metadata!.name}`;

  // push → patch through polling: a new minor version of MEASURED images.
  await pushImage(registry, 'bench/seed', '1.1.0', { content: 'bench 1.1.0' });
  const polled = Array.from({ length: MEASURED }, (_, i) => i * Math.floor(IMAGES / MEASURED));
  const pushedAt = await copyImage(client, host, 'bench/seed', polled.map(repository), '1.1.0');
  const pollExpected = bodies.filter((d) => polled.includes(d.image)).map((d) => ({ key: keyOf(d), from: pushedAt.get(repository(d.image))! }));
  const pollLatencies = await patchedSince('1.1.0', pollExpected, 3 * INTERVAL_MS);

  // registry webhook → patch: the same images get 1.2.0, announced by one distribution notification.
  await pushImage(registry, 'bench/seed', '1.2.0', { content: 'bench 1.2.0' });
  const hooked = polled;
  await copyImage(client, host, 'bench/seed', hooked.map(repository), '1.2.0');
  const hookAt = Date.now();
  const response = await fetch(`${daemon.url}/webhooks/registry`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' },
    body: JSON.stringify({ events: hooked.map((i) => ({ action: 'push', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: repository(i), tag: '1.2.0' }, request: { host: proxy!.host } })) }),
  });
  if (response.status !== 202) throw new Error(`the registry webhook answered ${response.status}: ${await response.text()}`);
  const hookExpected = bodies.filter((d) => hooked.includes(d.image)).map((d) => ({ key: keyOf(d), from: hookAt }));
  const hookLatencies = await patchedSince('1.2.0', hookExpected, 60_000);
  if (hookLatencies.length < hookExpected.length || pollLatencies.length < pollExpected.length) {
    console.error('missing patches; daemon log since the pushes:');
    for (const line of daemon.logs) {
      if (typeof line.time === 'number' && line.time >= Math.min(...pushedAt.values()) && line.msg !== 'workload image updated') console.error(JSON.stringify(line));
    }
  }
  clearInterval(sampler);
  const final = await processStats(pid);
  await daemon.stop();
  const stoppedAt = Date.now();

  const rows: Array<[string, string]> = [
    ['Deployments / namespaces / distinct images', `${DEPLOYMENTS} / ${NAMESPACES} / ${IMAGES}`],
    ['setup: create the Deployments (16 at a time)', `${(createMs / 1000).toFixed(0)} s`],
    ['setup: until the controller manager has settled them (kube-api-qps 500)', `${(settleMs / 1000).toFixed(0)} s`],
    ['registry requests, first 3 intervals after start (goal <= 3 x images)', `${first.length} (${IMAGES} images)`],
    ['  most requests for one image in those 90 s / closest two (goal >= 30 s)', `${Math.max(...perImage.map((l) => l.length))} / ${(closestGap / 1000).toFixed(1)} s`],
    ['registry requests per steady interval (goal = images)', `${(steadyRequests.length / 2).toFixed(0)}`],
    ['start -> every image polled once (goal <= 30 s + images / 50 per s)', `${(everyImageMs / 1000).toFixed(1)} s`],
    ['cycle overruns counted (keelson_registry_cycle_overrun_total)', String(overruns)],
    [`push -> patch by poll, ${pollExpected.length} Deployments: median / max`, `${(quantile(pollLatencies, 0.5) / 1000).toFixed(1)} s / ${(Math.max(...pollLatencies) / 1000).toFixed(1)} s (${pollLatencies.length} patched)`],
    [`webhook -> patch, ${hookExpected.length} Deployments: median / p95`, `${(quantile(hookLatencies, 0.5) / 1000).toFixed(2)} s / ${(quantile(hookLatencies, 0.95) / 1000).toFixed(2)} s (${hookLatencies.length} patched)`],
    ['apiserver requests/min: no controller / with keelson, steady / above baseline', (() => {
      const steady = (apiAfter - apiBefore) / ((steadyEnd - steadyStart) / 60_000);
      return `${baselinePerMinute} / ${steady.toFixed(0)} / ${(steady - baselinePerMinute).toFixed(0)}`;
    })()],
    ['daemon RSS steady median / peak before pushes / peak overall', `${mib(quantile(steadyRss, 0.5))} / ${mib(hwmSteady)} / ${mib(final.hwm)}`],
    ['daemon heap used (steady)', mib(heapUsed)],
    ['daemon CPU per steady interval', `${((cpuAfter - cpuBefore) / 2).toFixed(2)} s`],
    ['bench total', `${((Date.now() - setupStarted) / 1000).toFixed(0)} s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\nrollout: keelson daemon (NODE_OPTIONS=${NODE_OPTIONS || '(none)'}), ${DEPLOYMENTS} Deployments over ${IMAGES} images (${SCHEDULE}), real kube-apiserver (kwok) and docker-registry\n`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  if (BREAKDOWN) {
    printBreakdown(daemon.logs, started, tagRequests(), hookAt);
    const perThread = [...threadsAfter].map(([name, after]) => [name, (after - (threadsBefore.get(name) ?? 0)) / 2] as const).filter(([, s]) => s > 0);
    console.log(`steady CPU per interval by thread: ${perThread.sort((a, b) => b[1] - a[1]).map(([n, s]) => `${n} ${s.toFixed(2)} s`).join(', ')}`);
  }
  if (CPU_PROF_DIR) await printCpuProfile(CPU_PROF_DIR, pid, stoppedAt, steadyStart, steadyEnd);
  if (pollLatencies.length !== pollExpected.length || hookLatencies.length !== hookExpected.length) process.exitCode = 1;
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
