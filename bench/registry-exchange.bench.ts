/**
 * What one registry check costs the process that sends it, in CPU: keelson's RegistryClient
 * (`listTags`, with its pacing, auth and schema check) against a bare undici request, each sent
 * at 33 a second (1,000 images every 30 s) in two ways:
 *   - spread: one request every 30 ms, as poll jobs placed to the millisecond would send them;
 *   - stepped: 33 requests together once a second, as the registry watcher sends them now (jobs
 *     on whole seconds).
 * The registry is a real docker-registry on loopback. CPU is read from /proc per thread: the main
 * thread runs JavaScript and the socket calls, the others are V8's GC and compiler workers.
 *
 *   node --import tsx bench/registry-exchange.bench.ts [--requests 660]
 *
 * On an idle VM, waking the process costs about as much as a whole exchange; the spread rows
 * pay that once or twice per request, the stepped rows once per 33.
 */
import { Agent, request } from 'undici';
import { RegistryClient } from '../src/registry/index.js';
import { pushImage } from '../test/support/images.js';
import { startRegistry } from '../test/support/registry.js';
import { copyImage, threadCpu } from './support.js';

const at = process.argv.indexOf('--requests');
const REQUESTS = at > 0 ? Number(process.argv[at + 1]) : 660;
const RATE = 33;
const REPOSITORIES = 20;
const WARM_UP = 200;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `REQUESTS` requests at RATE a second, `perWake` together each time; CPU µs per request. */
async function measure(perWake: number, one: (i: number) => Promise<unknown>): Promise<{ total: number; main: number; other: number }> {
  for (let i = 0; i < WARM_UP; i++) await one(i); // JIT-compiled before the clock starts
  const usage = process.cpuUsage();
  const threads = await threadCpu(process.pid);
  for (let i = 0; i < REQUESTS; i += perWake) {
    const tick = sleep((1000 * perWake) / RATE);
    await Promise.all(Array.from({ length: Math.min(perWake, REQUESTS - i) }, (_, k) => one(i + k)));
    await tick;
  }
  const used = process.cpuUsage(usage);
  const after = await threadCpu(process.pid);
  const microseconds = (thread: string) => (((after.get(thread) ?? 0) - (threads.get(thread) ?? 0)) * 1e6) / REQUESTS;
  return { total: (used.user + used.system) / REQUESTS, main: microseconds('main thread'), other: microseconds('other threads') };
}

const registry = await startRegistry();
try {
  // One image pushed, the other repositories get its manifest by blob mounts.
  await pushImage(registry, 'bench/image-0', '1.0.0');
  const client = new RegistryClient({ requestsPerSecond: 1000 });
  await copyImage(client, registry.host, 'bench/image-0', Array.from({ length: REPOSITORIES - 1 }, (_, i) => `bench/image-${i + 1}`), '1.0.0');
  const agent = new Agent();
  const signal = new AbortController().signal;
  const variants: Array<[string, (i: number) => Promise<unknown>]> = [
    ['RegistryClient.listTags', (i) => client.listTags(`${registry.host}/bench/image-${i % REPOSITORIES}`, { signal })],
    ['bare undici request', async (i) => {
      const answer = await request(`${registry.url}/v2/bench/image-${i % REPOSITORIES}/tags/list?n=100`, { dispatcher: agent, headers: { accept: 'application/json' } });
      return answer.body.json();
    }],
  ];
  const rows: string[][] = [];
  for (const [name, one] of variants) {
    for (const [mode, perWake] of [['spread (1 per 30 ms)', 1], [`stepped (${RATE} per second)`, RATE]] as const) {
      const cost = await measure(perWake, one);
      rows.push([name, mode, cost.total.toFixed(0), cost.main.toFixed(0), cost.other.toFixed(0)]);
    }
  }
  await client.close();
  await agent.close();

  const header = ['request', 'sent', 'CPU µs / request', 'main thread', 'other threads'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(`\nregistry exchange cost: ${REQUESTS} tags/list requests per row at ${RATE}/s, docker-registry on loopback\n`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
} finally {
  await registry.stop();
}
