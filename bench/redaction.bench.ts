/**
 * Run-log redaction on the stream (StreamRedactor): throughput for a step's output as 64 KiB
 * reads and as short lines, with 1, 10 and 50 registered secrets (each hidden in about seven
 * forms: as written, URL-encoded, base64 and base64url at three alignments).
 *
 *   node --import tsx bench/redaction.bench.ts [--samples 7]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { registerSecret, StreamRedactor } from '../src/log/index.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const SAMPLES = flag('samples', 7);
const chunk = randomBytes(48 * 1024).toString('base64'); // 64 KiB of text
const lines = Array.from({ length: 2000 }, () => `${randomBytes(60).toString('base64')}\n`);

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `${median.toFixed(0).padStart(8)}  ${sorted[0]!.toFixed(0).padStart(8)}  ${sorted.at(-1)!.toFixed(0).padStart(8)}`;
}

console.log('secrets  workload              median       min       max');
let registered = 0;
for (const count of [1, 10, 50]) {
  for (; registered < count; registered++) registerSecret(`secret-${registered}-${randomBytes(16).toString('hex')}`);
  const chunks: number[] = [];
  const perLine: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const stream = new StreamRedactor();
    let start = performance.now();
    for (let i = 0; i < 64; i++) stream.push(chunk);
    chunks.push((64 * chunk.length) / 1048576 / ((performance.now() - start) / 1000));
    start = performance.now();
    for (const line of lines) stream.push(line);
    perLine.push(lines.length / ((performance.now() - start) / 1000));
  }
  console.log(`${String(count).padStart(7)}  64 KiB reads, MiB/s  ${stats(chunks)}`);
  console.log(`${String(count).padStart(7)}  81 B lines, lines/s  ${stats(perLine)}`);
}
