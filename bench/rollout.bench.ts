/**
 * Rollouts at scale, end to end: 1,000 annotated Deployments (policy minor, trigger poll) over 100
 * images, in 5 namespaces of the real test cluster (kube-apiserver + kwok), watched by the
 * RolloutController + RegistryWatcher + RegistryClient that `keelson daemon` runs (same defaults:
 * 10 requests/s per registry), against a real docker-registry with the 100 images pushed by
 * buildah. Reports:
 *   - registry HTTP requests per poll cycle (counted at the undici dispatcher; goal: one per image)
 *   - time from the check of a pushed image (as a registry webhook triggers it) to the patch of
 *     every Deployment running that image
 *   - this process's heap, RSS and CPU while it follows the 1,000 Deployments
 *
 *   node --import tsx bench/rollout.bench.ts [--cycles 5]
 *
 * The Deployments have 0 replicas: kwok would otherwise run 1,000 fake pods on a 2-core machine,
 * and a semver rollout reads its baseline from the spec's tag, not from pods.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, type Dispatcher } from 'undici';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { createLogger } from '../src/log/index.js';
import { RegistryClient } from '../src/registry/index.js';
import { RegistryWatcher } from '../src/registry-watch/index.js';
import { RegistryWatcherSource, RolloutController } from '../src/rollout/index.js';
import { FileStore } from '../src/store/index.js';
import { startCluster, type RunningCluster } from '../test/support/cluster.js';
import { pushImage } from '../test/support/images.js';
import { startRegistry, type RunningRegistry } from '../test/support/registry.js';

const IMAGES = 100;
const DEPLOYMENTS = 1000;
const NAMESPACES = 5;
/** Images that get a new tag in the push-to-patch measurement */
const PUSHED = 10;
const cyclesFlag = process.argv.indexOf('--cycles');
const CYCLES = cyclesFlag > 0 ? Number(process.argv[cyclesFlag + 1]) : 5;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function memory(): { heap: number; rss: number } {
  gc();
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed, rss };
}
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Counts every HTTP request the registry client sends (pages, HEADs and retries included). */
class CountingAgent extends Agent {
  requests = 0;
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.requests += 1;
    return super.dispatch(options, handler);
  }
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

async function until(check: () => boolean | Promise<boolean>, what: string, limitMs = 300_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function stats(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `${sorted[0]!.toFixed(0)} / ${at(0.5).toFixed(0)} / ${at(0.95).toFixed(0)} / ${sorted[sorted.length - 1]!.toFixed(0)}`;
}

let cluster: RunningCluster | undefined;
let registry: RunningRegistry | undefined;
let stateDir: string | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

async function cleanUp(): Promise<void> {
  for (const step of cleanups.reverse()) await step().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
  await registry?.stop().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });
}

try {
  const setupStarted = Date.now();
  [cluster, registry] = await Promise.all([startCluster(), startRegistry()]);
  stateDir = await mkdtemp(join(tmpdir(), 'keelson-rollout-bench-'));
  const host = registry.host;
  const repository = (i: number): string => `bench/image-${i}`;

  // The same content under 100 names: one buildah build, 100 pushes.
  await pool(Array.from({ length: IMAGES }, (_, i) => i), 4, (i) => pushImage(registry!, repository(i), '1.0.0', { content: 'bench 1.0.0' }));

  const kc = cluster.kubeConfig();
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => `bench-${n}`);
  for (const namespace of namespaces) await core.createNamespace({ body: { metadata: { name: namespace } } });
  const bodies: Array<{ namespace: string; body: V1Deployment }> = Array.from({ length: DEPLOYMENTS }, (_, d) => {
    const name = `app-${d}`;
    return {
      namespace: namespaces[d % NAMESPACES]!,
      body: {
        metadata: { name, annotations: { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 1h' } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `${host}/${repository(d % IMAGES)}:1.0.0` }] } },
        },
      },
    };
  });
  const createStarted = Date.now();
  await pool(bodies, 16, ({ namespace, body }) => apps.createNamespacedDeployment({ namespace, body }));
  const createMs = Date.now() - createStarted;

  // Patches seen by the controller, from its own log line, with the time each was logged.
  const patchedAt = new Map<string, number>();
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) {
          if (!line.includes('workload image updated')) continue;
          const { workload } = JSON.parse(line) as { workload: string };
          patchedAt.set(workload, Date.now());
        }
        callback();
      },
    }),
  });

  const memoryBefore = memory();
  const agent = new CountingAgent();
  const store = await FileStore.open({ stateDir });
  cleanups.push(() => store.close());
  const client = new RegistryClient({ dispatcher: agent, logger });
  cleanups.push(async () => { await client.close(); await agent.close(); });
  // Not started: the bench runs the cycles itself (pollOnce), so each cycle is counted alone.
  const watcher = new RegistryWatcher({ reader: client, store, logger });
  cleanups.push(() => watcher.stop());
  const controller = new RolloutController({
    kubeConfig: kc, store, logger,
    source: new RegistryWatcherSource(watcher, logger),
    resolveDigest: (repo, tag) => client.manifestDigest(repo, tag),
  });
  const cpuStart = process.cpuUsage();
  const discoverStarted = Date.now();
  await controller.start();
  cleanups.push(() => controller.stop());
  await until(() => watcher.status().reduce((n, job) => n + job.targetIds.length, 0) === DEPLOYMENTS, 'every Deployment to be a watch target');
  const discoverMs = Date.now() - discoverStarted;
  const jobs = watcher.status().length;
  const memoryFollowing = memory();

  const cycles: Array<{ requests: number; ms: number }> = [];
  /** One poll cycle: every job checked once (what a timer-driven cycle does when all are due). */
  const cycle = async (): Promise<{ requests: number; ms: number }> => {
    const before = agent.requests;
    const started = performance.now();
    await watcher.checkNow();
    return { requests: agent.requests - before, ms: performance.now() - started };
  };
  const cpuSteady = process.cpuUsage();
  const steadyStarted = performance.now();
  for (let i = 0; i < CYCLES; i++) cycles.push(await cycle());
  const steadyMs = performance.now() - steadyStarted;
  const cpuSteadyUsed = process.cpuUsage(cpuSteady);

  // A new minor version of PUSHED images (buildah pushes, not measured), then each image checked
  // on its own as a registry webhook makes the daemon do: the time from that check to the patch
  // of every Deployment running the image. One image at a time, so no push or other check shares
  // the two cores with it.
  const pushedRepos = Array.from({ length: PUSHED }, (_, i) => i * (IMAGES / PUSHED));
  await pool(pushedRepos, 4, (i) => pushImage(registry!, repository(i), '1.1.0', { content: 'bench 1.1.0' }));
  const pushedAt = new Map<number, number>();
  for (const i of pushedRepos) {
    pushedAt.set(i, Date.now());
    await watcher.checkNow(`${host}/${repository(i)}`);
  }
  const rolloutCycle = await cycle();
  const expected = bodies.filter((_, d) => pushedRepos.includes(d % IMAGES));
  const keyOf = (d: { namespace: string; body: V1Deployment }) => `${d.namespace}/deployment/${d.body.metadata!.name}`;
  await until(() => expected.every((d) => patchedAt.has(keyOf(d))), 'every Deployment of a pushed image to be patched');
  const latencies = expected.map((d) => patchedAt.get(keyOf(d))! - pushedAt.get(Number(/(\d+):1\.0\.0$/.exec(d.body.spec!.template.spec!.containers[0]!.image!)![1]))!);
  const afterRollout = await cycle();
  const memoryAfter = memory();
  const cpuTotal = process.cpuUsage(cpuStart);

  const requests = cycles.map((c) => c.requests);
  const rows: Array<[string, string]> = [
    ['Deployments / namespaces / distinct images', `${DEPLOYMENTS} / ${NAMESPACES} / ${IMAGES}`],
    ['registry poll jobs', String(jobs)],
    ['setup: create 1,000 Deployments (16 at a time)', `${createMs} ms`],
    ['controller start to 1,000 targets watched', `${discoverMs} ms`],
    ['poll cycles (steady, no change)', String(CYCLES)],
    ['registry requests per cycle (min / median / p95 / max)', stats(requests)],
    ['goal: one per distinct image', `${IMAGES} ${requests.every((r) => r === IMAGES) ? 'met' : 'MISSED'}`],
    ['cycle time ms (min / median / p95 / max)', stats(cycles.map((c) => c.ms))],
    ['registry requests, full cycle after the pushes', `${rolloutCycle.requests} (then ${afterRollout.requests})`],
    [`webhook check to patch ms, ${expected.length} Deployments (min / median / p95 / max)`, stats(latencies)],
    ['Deployments patched (expected)', `${patchedAt.size} (${expected.length})`],
    ['heap / RSS before', `${mib(memoryBefore.heap)} / ${mib(memoryBefore.rss)}`],
    ['heap / RSS following 1,000 Deployments', `${mib(memoryFollowing.heap)} / ${mib(memoryFollowing.rss)}`],
    ['heap / RSS after the rollout', `${mib(memoryAfter.heap)} / ${mib(memoryAfter.rss)}`],
    ['CPU during steady cycles (user + system)', `${((cpuSteadyUsed.user + cpuSteadyUsed.system) / 1000).toFixed(0)} ms in ${steadyMs.toFixed(0)} ms wall (${((cpuSteadyUsed.user + cpuSteadyUsed.system) / 10 / steadyMs).toFixed(1)}% of a core)`],
    ['CPU from controller start to end', `${((cpuTotal.user + cpuTotal.system) / 1000).toFixed(0)} ms`],
    ['setup total', `${((Date.now() - setupStarted) / 1000).toFixed(0)} s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('\nrollout: 1,000 annotated Deployments over 100 images, real kube-apiserver (kwok) and docker-registry\n');
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  if (!requests.every((r) => r === IMAGES) || patchedAt.size !== expected.length) process.exitCode = 1;
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
