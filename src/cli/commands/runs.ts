import type { Command } from 'commander';
import { z } from 'zod';
import { Duration } from '../../domain/index.js';
import { UsageError } from '../../errors.js';
import type { CorruptRun, RunRecord } from '../../store/index.js';
import { addStoreOptions, withStoreFromOptions, type StoreFlags } from '../store-options.js';

interface RunsFlags extends StoreFlags {
  readonly json?: boolean;
  readonly watch?: string;
  readonly limit?: string;
}

const Limit = z.coerce.number().int().positive();

/** `keelson runs`: the recorded runs, newest first, as a table or as JSON records. */
export function registerRunsCommand(program: Command): void {
  addStoreOptions(program
    .command('runs')
    .description('list recorded runs, newest first')
    .option('--json', 'print the full run records as a JSON array')
    .option('--watch <watch>', 'only runs of this watch (repo^branch, as shown in the WATCH column)')
    .option('--limit <n>', 'at most this many runs (default: 100)'))
    .action(async (flags: RunsFlags) => {
      let limit: number | undefined;
      if (flags.limit !== undefined) {
        const parsed = Limit.safeParse(flags.limit);
        if (!parsed.success) throw new UsageError(`--limit: expected a positive whole number, got "${flags.limit}"`);
        limit = parsed.data;
      }
      await withStoreFromOptions(flags, async (store) => {
        const runs = await store.listRuns({
          ...(flags.watch !== undefined ? { watch: flags.watch } : {}),
          ...(limit !== undefined ? { limit } : {}),
        });
        // A record that does not parse is shown, never dropped: it may be the run someone looks for.
        const corrupt = await store.corruptRuns();
        for (const run of corrupt) {
          process.stderr.write(`keelson: warning: ${run.where}: ${run.problem}; listed as corrupt until the file is moved away\n`);
        }
        if (flags.json) {
          const listed = [...runs, ...corrupt.map((run) => ({ id: run.id, phase: 'corrupt', file: run.where, problem: run.problem }))];
          process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
          return;
        }
        if (runs.length === 0 && corrupt.length === 0) {
          process.stderr.write(`keelson: no runs recorded in ${store.description}\n`);
          return;
        }
        process.stdout.write(formatRunsTable(runs, new Date(), corrupt));
      });
    });
}

const HEADER = ['ID', 'KIND', 'WATCH', 'COMMIT', 'PHASE', 'REASON', 'STARTED', 'DURATION', 'IMAGE'] as const;

/** The `keelson runs` table: one line per run, columns padded to their widest cell; records
 * that do not parse come last, as `corrupt`. */
export function formatRunsTable(runs: readonly RunRecord[], now: Date, corrupt: readonly CorruptRun[] = []): string {
  const rows = [[...HEADER], ...runs.map((run) => [
    run.id,
    run.kind,
    run.watch,
    run.commit.slice(0, 7),
    run.phase,
    run.reason,
    run.startedAt ? `${run.startedAt.slice(0, 19)}Z` : '-',
    runDuration(run, now),
    shortDigest(run.image?.digest),
  ]), ...corrupt.map((run) => [run.id, '-', '-', '-', 'corrupt', '-', '-', '-', '-'])];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** Finished runs: how long they ran. Running ones: so far, with a `+`. Never started: `-`. */
function runDuration(run: RunRecord, now: Date): string {
  if (!run.startedAt) return '-';
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now.getTime();
  const ms = Math.max(0, end - Date.parse(run.startedAt));
  const shown = ms >= 1000 ? Math.round(ms / 1000) * 1000 : ms;
  return `${Duration.ofMilliseconds(shown)}${run.finishedAt ? '' : '+'}`;
}

/** `sha256:0123456789abcdef...` → `0123456789ab`, as docker shows image ids. */
function shortDigest(digest: string | undefined): string {
  if (!digest) return '-';
  return (digest.split(':')[1] ?? digest).slice(0, 12);
}
