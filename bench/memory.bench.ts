/**
 * Where the daemon's memory goes, part by part: heap and RSS after loading each library the
 * daemon loads (in the order it loads them), then after keelson's own modules, then per
 * workload followed (a trimmed informer object, the controller's record, one registry watch
 * target), at 1,000 and 10,000 workloads, and last what client-node adds when a kubernetes
 * executor or a credential plugin loads it. In one process, each step measured after two full GCs.
 *
 *   npm run build && node --expose-gc --import tsx bench/memory.bench.ts
 *
 * No cluster or registry: the objects are built the way discovery and the registry watcher build
 * them. Keelson's modules come from dist/ (compiled), as the daemon runs them. The RSS column
 * includes tsx, which runs this file; the "added" columns do not.
 */
// Everything keelson is imported after the measurements of the libraries (dynamic imports below).

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)}`;

const rows: Array<[string, string, string, string, string]> = [];
let last = process.memoryUsage();
function step(what: string): void {
  gc!();
  gc!();
  const now = process.memoryUsage();
  rows.push([what, mib(now.heapUsed - last.heapUsed), mib(now.rss - last.rss), mib(now.heapUsed), mib(now.rss)]);
  last = now;
}

step('node itself');
// client-node is not among them: the daemon reaches the API server through src/kube; it is
// measured at the end, as what a kubernetes executor or a credential plugin adds.
for (const library of ['undici', 'zod', 'pino', 'prom-client', 'ioredis', 'handlebars', 'simple-git', 'yaml', 'node-cron', 'semver']) {
  await import(library);
  step(`+ ${library}`);
}
const dist = (path: string) => new URL(`../dist/${path}`, import.meta.url).href;
await import(dist('cli/program.js'));
step('+ keelson (every command, as `keelson daemon` loads them)');
type Modules = [typeof import('../src/policy/index.js'), typeof import('../src/registry-watch/index.js'), typeof import('../src/rollout/discovery.js'), typeof import('../src/rollout/index.js')];
const [{ parsePolicy }, { parseSchedule, RegistryWatcher }, { trimWorkload }, { readWorkloadSettings }] = await Promise.all([
  import(dist('policy/index.js')), import(dist('registry-watch/index.js')), import(dist('rollout/discovery.js')), import(dist('rollout/index.js')),
]) as Modules;

/** A Deployment as `kubectl apply` leaves it: last-applied-configuration, managed fields, status. */
function deployment(i: number, images: number): Record<string, unknown> {
  const spec = {
    replicas: 0,
    selector: { matchLabels: { app: `app-${i}` } },
    template: {
      metadata: { labels: { app: `app-${i}` } },
      spec: { containers: [{ name: 'app', image: `127.0.0.1:5000/bench/image-${i % images}:1.0.0`, resources: {}, terminationMessagePath: '/dev/termination-log', imagePullPolicy: 'IfNotPresent' }] },
    },
  };
  const annotations = { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 30s' };
  return {
    metadata: {
      name: `app-${i}`, namespace: `bench-${i % 20}`, uid: `0000-${i}`, resourceVersion: String(1000 + i), generation: 1,
      annotations: { ...annotations, 'deployment.kubernetes.io/revision': '1', 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ metadata: { annotations }, spec }) },
      managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': {} }, 'f:spec': { 'f:template': {} } } }],
    },
    spec,
    status: { observedGeneration: 1, conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }] },
  };
}

const held: unknown[] = [];
for (const count of [1000, 10_000]) {
  const images = count / 10;
  const whole = Array.from({ length: count }, (_, i) => deployment(i, images));
  held.push(whole);
  step(`${count} whole Deployments (what an untrimmed informer cache holds)`);
  held.pop();
  whole.length = 0;
  step(`  dropped`);
  const trimmed = Array.from({ length: count }, (_, i) => trimWorkload('Deployment', deployment(i, images)));
  held.push(trimmed);
  step(`${count} trimmed Deployments (the informer cache now)`);
  const settings = trimmed.map((w) => readWorkloadSettings(`${w.metadata!.namespace}/deployment/${w.metadata!.name}`, w.metadata!.annotations, w.metadata!.labels));
  held.push(settings);
  step(`+ their settings (the controller's record)`);
  const watcher = new RegistryWatcher({ reader: { listTags: async () => [], manifestDigest: async () => '' } });
  const schedule = parseSchedule('@every 30s');
  const policy = parsePolicy('minor');
  for (let i = 0; i < count; i++) {
    watcher.addTarget({ id: `bench-${i % 20}/deployment/app-${i}/app`, repository: `127.0.0.1:5000/bench/image-${i % images}`, current: '1.0.0', policy, schedule });
  }
  held.push(watcher);
  step(`+ ${count} registry watch targets in ${images} poll jobs`);
  held.length = 0;
  step('  all dropped');
}

await import('@kubernetes/client-node');
step('+ @kubernetes/client-node (only with --executor kubernetes or a credential plugin)');

console.log('\nmemory, MiB: step / heap added / RSS added / heap / RSS\n');
const width = Math.max(...rows.map((r) => r[0].length));
for (const [what, heapAdded, rssAdded, heap, rss] of rows) {
  console.log(`${what.padEnd(width)}  ${heapAdded.padStart(7)}  ${rssAdded.padStart(7)}  ${heap.padStart(7)}  ${rss.padStart(7)}`);
}
