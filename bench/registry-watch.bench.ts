/**
 * Registry watcher at scale: 1,000 targets over 100 distinct images. Reports the registry
 * requests each poll cycle makes (the goal: exactly one per distinct repository in tag mode and
 * one per repository:tag in digest mode, however many targets share them), the time a cycle
 * takes in the watcher itself, and the watcher's heap.
 *
 *   node --import tsx bench/registry-watch.bench.ts [--cycles 30]
 *
 * The registry is a counting reader that serves tags and digests from memory: this measures the
 * watcher, not a registry or the network.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parsePolicy } from '../src/policy/index.js';
import { RegistryWatcher, parseSchedule, type RegistryReader, type WatchTarget } from '../src/registry-watch/index.js';

const IMAGES = 100;
const TARGETS = 1000;
const cyclesFlag = process.argv.indexOf('--cycles');
const CYCLES = cyclesFlag > 0 ? Number(process.argv[cyclesFlag + 1]) : 30;

class CountingReader implements RegistryReader {
  readonly tags = new Map<string, string[]>();
  readonly digests = new Map<string, string>();
  listCalls = 0;
  headCalls = 0;

  async listTags(repository: string): Promise<string[]> {
    this.listCalls += 1;
    return this.tags.get(repository) ?? [];
  }

  async manifestDigest(repository: string, reference: string): Promise<string> {
    this.headCalls += 1;
    return this.digests.get(`${repository}:${reference}`) ?? `sha256:${'0'.repeat(64)}`;
  }
}

function digest(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const reader = new CountingReader();
for (let i = 0; i < IMAGES; i++) {
  const repository = `registry.example:5000/team/image-${i}`;
  reader.tags.set(repository, ['1.0.0', '1.0.1', '1.1.0', '1.9.0', '2.0.0', '2.0.0-rc.1', 'latest', 'build-1', 'build-2']);
  reader.digests.set(`${repository}:latest`, digest(i));
}

// Per image: 8 targets that list tags under assorted policies and 2 that follow `latest`.
const policies = ['patch', 'minor', 'major', 'all', 'glob:build-*', 'regexp:^(?P<compare>\\d+\\.\\d+\\.\\d+)$', 'minor', 'patch'].map((p) => parsePolicy(p));
const force = parsePolicy('force');
const schedules = ['@every 1m', '@every 30s', '0 */5 * * * *', '*/2 * * * *'].map((s) => parseSchedule(s));
const targets: WatchTarget[] = [];
for (let t = 0; t < TARGETS; t++) {
  const image = t % IMAGES;
  const slot = Math.floor(t / IMAGES);
  const repository = `registry.example:5000/team/image-${image}`;
  const schedule = schedules[t % schedules.length]!;
  targets.push(slot < 8
    ? { id: `deployment/ns-${slot}/app-${image}/c`, repository, current: slot === 4 ? 'build-1' : '1.0.0', policy: policies[slot]!, schedule }
    : { id: `deployment/ns-${slot}/app-${image}/c`, repository, current: 'latest', policy: force, schedule });
}

let clock = Date.parse('2026-01-01T00:00:00Z');
const heapBefore = heapUsed();
// Every job at the start of its interval: all due together, the worst case for one cycle.
const watcher = new RegistryWatcher({ reader, now: () => clock, concurrency: 16, jitter: () => 0 });
let events = 0;
watcher.subscribe((change) => {
  events += change.targetIds.length;
});
for (const target of targets) watcher.addTarget(target);
const heapWatching = heapUsed();
const jobs = watcher.status();
const tagJobs = jobs.filter((job) => job.mode === 'tags').length;
const digestJobs = jobs.length - tagJobs;

interface Sample {
  readonly requests: number;
  readonly ms: number;
}
const samples: Sample[] = [];
for (let cycle = 0; cycle < CYCLES; cycle++) {
  // a tenth of the images get a push between cycles: a new tag and a new `latest` digest
  if (cycle > 0) {
    for (let i = cycle % 10; i < IMAGES; i += 10) {
      const repository = `registry.example:5000/team/image-${i}`;
      reader.tags.get(repository)!.push(`1.${cycle + 9}.0`, `build-${cycle + 2}`);
      reader.digests.set(`${repository}:latest`, digest(cycle * 1000 + i));
    }
  }
  const before = reader.listCalls + reader.headCalls;
  const started = process.hrtime.bigint();
  const result = await watcher.pollOnce();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.checked !== jobs.length) throw new Error(`cycle ${cycle}: ${result.checked} jobs checked, expected ${jobs.length}`);
  samples.push({ requests: reader.listCalls + reader.headCalls - before, ms });
  clock += 10 * 60_000; // every job is due again
}
const heapAfter = heapUsed();
await watcher.stop();

function stats(values: number[]): { min: number; median: number; p95: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { min: sorted[0]!, median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1]! };
}

const requests = stats(samples.map((s) => s.requests));
const times = stats(samples.map((s) => s.ms));
const expected = tagJobs + digestJobs;
const rows: [string, string][] = [
  ['targets', String(TARGETS)],
  ['distinct images', String(IMAGES)],
  ['poll jobs (tags + digest)', `${jobs.length} (${tagJobs} + ${digestJobs})`],
  ['cycles', String(CYCLES)],
  ['requests per cycle (min / median / max)', `${requests.min} / ${requests.median} / ${requests.max}`],
  ['goal: one per job', `${expected} ${requests.min === expected && requests.max === expected ? 'met' : 'MISSED'}`],
  ['requests per target per cycle', (requests.median / TARGETS).toFixed(3)],
  ['cycle time ms (min / median / p95 / max)', `${times.min.toFixed(2)} / ${times.median.toFixed(2)} / ${times.p95.toFixed(2)} / ${times.max.toFixed(2)}`],
  ['targets notified (all cycles)', String(events)],
  ['watcher heap, targets added', `${((heapWatching - heapBefore) / 1024).toFixed(0)} KiB (${((heapWatching - heapBefore) / TARGETS).toFixed(0)} B per target)`],
  ['watcher heap, after all cycles', `${((heapAfter - heapBefore) / 1024).toFixed(0)} KiB (${((heapAfter - heapBefore) / TARGETS).toFixed(0)} B per target, baselines included)`],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log('registry-watch: 1,000 targets over 100 images, in-memory counting registry\n');
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
if (requests.min !== expected || requests.max !== expected) process.exitCode = 1;
