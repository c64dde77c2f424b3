/**
 * Status page load time with 1,000 runs in a FileStore (each with a log): the server's own time
 * to answer the overview (50 runs, the default, and all 1,000), the runs API, and one run's page;
 * then, when Debian's chromium is installed, the time a browser takes to load the overview
 * (navigation start to the load event).
 *
 *   node --import tsx bench/status-page.bench.ts [--runs 1000] [--samples 30]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { newRunId } from '../src/domain/index.js';
import { FileStore, RunReason, type RunPhase, type RunRecord } from '../src/store/index.js';
import { createServer } from '../src/server/index.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = flag('runs', 1000);
const SAMPLES = flag('samples', 30);
const CHROMIUM = process.env.KEELSON_TEST_CHROMIUM ?? '/usr/bin/chromium';

const dir = await mkdtemp(join(tmpdir(), 'keelson-bench-page-'));
const store = await FileStore.open({ stateDir: dir });
const server = await createServer({ store }).listen(0, '127.0.0.1');

try {
  const seedStart = performance.now();
  const phases: RunPhase[] = ['succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled'];
  let sample: RunRecord | undefined;
  for (let i = 0; i < RUNS; i++) {
    const id = newRunId(new Date(Date.UTC(2026, 0, 1) + i * 60_000));
    const watch = `https://git.example/team/app-${i % 20}.git^main`;
    await store.createRun({ id, kind: 'build', watch, repo: watch.split('^')[0]!, branch: 'main', commit: i.toString(16).padStart(40, '0'), phase: 'queued', reason: RunReason.Queued, message: 'queued' });
    await store.transitionRun(id, 'running', RunReason.Started, 'building');
    await store.appendLog(id, Array.from({ length: 40 }, (_, n) => `step ${n}: some build output for run ${i}\n`).join(''));
    const phase = phases[i % phases.length]!;
    sample = await store.transitionRun(id, phase, phase === 'succeeded' ? RunReason.StepsSucceeded : RunReason.StepFailed, phase, phase === 'succeeded'
      ? { image: { ref: `127.0.0.1:5000/team/app-${i % 20}:main`, digest: `sha256:${i.toString(16).padStart(64, '0')}`, pushed: true } }
      : undefined);
  }
  const seedMs = performance.now() - seedStart;

  const rows: string[][] = [];
  async function measure(label: string, path: string): Promise<void> {
    const times: number[] = [];
    let bytes = 0;
    await (await fetch(`${server.url}${path}`)).arrayBuffer(); // warm-up
    for (let s = 0; s < SAMPLES; s++) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}${path}`);
      bytes = (await res.arrayBuffer()).byteLength;
      times.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
    }
    rows.push([label, ...stats(times), `${(bytes / 1024).toFixed(0)} KiB`]);
  }

  await measure('GET / (50 newest runs)', '/');
  await measure('GET /?limit=1000', `/?limit=${Math.min(RUNS, 1000)}`);
  await measure('GET /api/runs?limit=1000', `/api/runs?limit=${Math.min(RUNS, 1000)}`);
  await measure('GET /runs/:id (40-line log)', `/runs/${sample!.id}`);

  if (existsSync(CHROMIUM)) {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      for (const [label, path] of [['chromium load / (50 runs)', '/'], ['chromium load /?limit=1000', `/?limit=${Math.min(RUNS, 1000)}`]] as const) {
        const times: number[] = [];
        await page.goto(`${server.url}${path}`);
        for (let s = 0; s < Math.min(SAMPLES, 10); s++) {
          await page.goto(`${server.url}${path}`, { waitUntil: 'load' });
          // A string: the browser evaluates it, and this project's tsconfig has no DOM types.
          times.push(await page.evaluate<number>("(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()"));
        }
        rows.push([label, ...stats(times), '']);
      }
    } finally {
      await browser.close();
    }
  }

  console.log(`status page with ${RUNS} runs in a FileStore (seeded in ${(seedMs / 1000).toFixed(1)} s), ${SAMPLES} samples each\n`);
  const header = ['request', 'min ms', 'median ms', 'p95 ms', 'max ms', 'size'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
} finally {
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

function stats(times: number[]): string[] {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return [sorted[0]!, at(0.5), at(0.95), sorted.at(-1)!].map((v) => v.toFixed(1));
}
