import type { Command } from 'commander';
import { z } from 'zod';
import { Duration } from '../../domain/index.js';
import { UsageError } from '../../errors.js';
import { watchKeysFor } from '../../git/index.js';
import { compareRunsNewestFirst, defaultStateDir, type CorruptRun, type RunReader, type RunRecord } from '../../store/index.js';
import { traceRuns } from '../../trace/index.js';
import { addOutputOptions, formatList, outputFormat, type Listing, type OutputFlags } from '../output.js';
import { addStoreOptions, readStoreFromOptions, type StoreFlags } from '../store-options.js';

interface RunsFlags extends StoreFlags, OutputFlags {
  readonly watch?: string;
  readonly limit?: string;
}

const Limit = z.coerce.number().int().positive();

/** `keelson runs`: the recorded runs, newest first, as a table, JSON, YAML or names. */
export function registerRunsCommand(program: Command): void {
  addStoreOptions(addOutputOptions(program
    .command('runs')
    .description('list recorded runs, newest first (a --state-dir that does not exist is an error; nothing is created)'))
    .option('--watch <watch>', 'only runs of this watch, spelled any way: path, file:// URL, URL, with or without ^branch')
    .option('--limit <n>', 'at most this many runs (default: 100)'))
    .action(async (flags: RunsFlags) => {
      const format = outputFormat(flags);
      let limit: number | undefined;
      if (flags.limit !== undefined) {
        const parsed = Limit.safeParse(flags.limit);
        if (!parsed.success) throw new UsageError(`--limit: expected a positive whole number, got "${flags.limit}"`);
        limit = parsed.data;
      }
      const listed = await readStoreFromOptions(flags, async (store): Promise<Listed[]> => {
        // Each run with its trace: where its digest was rolled out and what ci said about it.
        const found = await traceRuns(store, await listRunsOfWatch(store, flags.watch, limit));
        // A record that does not parse is shown, never dropped: it may be the run someone looks for.
        const corrupt = await store.corruptRuns();
        for (const run of corrupt) {
          process.stderr.write(`keelson: warning: ${run.where}: ${run.problem}; listed as corrupt until the file is moved away\n`);
        }
        if (found.length === 0 && corrupt.length === 0) process.stderr.write(`keelson: no runs recorded in ${store.description}\n`);
        return [...found, ...corrupt];
      }, () => {
        process.stderr.write(`keelson: no runs recorded (${defaultStateDir()} does not exist yet)\n`);
        return [];
      });
      if (listed.length === 0 && (format === 'table' || format === 'wide')) return;
      process.stdout.write(formatList(listed, format, runListing(new Date())));
    });
}

/** Runs newest first, of every key the watch was recorded under when one is given. */
export async function listRunsOfWatch(store: RunReader, watch: string | undefined, limit?: number): Promise<RunRecord[]> {
  const filter = limit !== undefined ? { limit } : {};
  if (watch === undefined) return store.listRuns(filter);
  const keys = await watchKeysFor(watch);
  const lists = await Promise.all(keys.map((key) => store.listRuns({ ...filter, watch: key })));
  return lists.flat().sort(compareRunsNewestFirst).slice(0, limit ?? Infinity);
}

/** A run, or a record that does not parse (listed last, as `corrupt`). */
type Listed = RunRecord | CorruptRun;
const isCorrupt = (item: Listed): item is CorruptRun => 'where' in item;

/** The `keelson runs` columns; wide adds the executor, the full image and the message. */
export function runListing(now: Date): Listing<Listed> {
  return {
    columns: ['ID', 'KIND', 'WATCH', 'COMMIT', 'PHASE', 'REASON', 'STARTED', 'DURATION', 'IMAGE'],
    wideColumns: ['EXECUTOR', 'IMAGE REF', 'MESSAGE'],
    row: (run, wide) => isCorrupt(run)
      ? [run.id, '-', '-', '-', 'corrupt', '-', '-', '-', '-', ...(wide ? ['-', '-', `${run.where}: ${run.problem}`] : [])]
      : [
        run.id,
        run.kind,
        run.watch,
        run.commit.slice(0, 7),
        run.phase,
        run.reason,
        run.startedAt ? `${run.startedAt.slice(0, 19)}Z` : '-',
        runDuration(run, now),
        shortDigest(run.image?.digest),
        ...(wide ? [run.executor ?? '-', run.image?.ref ?? '-', run.message.split('\n')[0]!] : []),
      ],
    name: (run) => run.id,
    data: (run) => (isCorrupt(run) ? { id: run.id, phase: 'corrupt', file: run.where, problem: run.problem } : run),
  };
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
