import type { RunRecord, StateStore } from '../store/index.js';
import { StoredDigestTrace } from './schema.js';
import type { CiTrace, DigestTrace, RolloutTrace, TracedRun } from './types.js';

/** Store key of what happened to one digest. */
export function traceKey(digest: string): string {
  return `trace:${digest}`;
}

/** Entries kept per digest and list; a digest rolled to more workloads than this keeps the newest. */
const MAX_ENTRIES = 500;

const EMPTY: DigestTrace = { rollouts: [], ci: [] };

/**
 * What happened to each pushed digest: the rollouts to it and the `keelson ci` results of the
 * workloads running it, in the StateStore under `trace:<digest>`. One writer process at a time
 * (the daemon's leader); its writes to one digest are serialised here.
 */
export class TraceBook {
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Per digest, the batch not yet started: its changes and the promise of its write */
  private readonly waiting = new Map<string, { readonly changes: Array<(trace: DigestTrace) => DigestTrace>; readonly written: Promise<void> }>();

  constructor(private readonly store: StateStore) {}

  /** Appends rollouts, grouped by digest. */
  async recordRollouts(entries: readonly RolloutTrace[]): Promise<void> {
    const byDigest = new Map<string, RolloutTrace[]>();
    for (const entry of entries) byDigest.set(entry.digest, [...(byDigest.get(entry.digest) ?? []), entry]);
    await Promise.all([...byDigest].map(([digest, added]) => this.update(digest, (t) => ({ ...t, rollouts: [...t.rollouts, ...added].slice(-MAX_ENTRIES) }))));
  }

  /** Records one ci result for a digest; the same run reported twice (a re-read annotation) is kept once. */
  async recordCi(digest: string, entry: CiTrace): Promise<void> {
    await this.update(digest, (t) => t.ci.some((c) => c.run === entry.run && c.workload === entry.workload && c.finishedAt === entry.finishedAt)
      ? t
      : { ...t, ci: [...t.ci, entry].slice(-MAX_ENTRIES) });
  }

  async forDigest(digest: string): Promise<DigestTrace> {
    return readTrace(this.store, digest);
  }

  /**
   * Changes to one digest's trace are written one batch at a time: those that arrive while a
   * write is in flight join the next batch, so a hundred workloads rolled to one digest are a
   * few store writes, not a hundred in a row.
   */
  private update(digest: string, change: (trace: DigestTrace) => DigestTrace): Promise<void> {
    let batch = this.waiting.get(digest);
    if (!batch) {
      const changes: Array<(trace: DigestTrace) => DigestTrace> = [];
      const previous = this.queues.get(digest) ?? Promise.resolve();
      const written = previous.then(async () => {
        this.waiting.delete(digest); // from now on, changes go to the next batch
        const before = await readTrace(this.store, digest);
        const after = changes.reduce((trace, apply) => apply(trace), before);
        if (after !== before) await this.store.setState<DigestTrace>(traceKey(digest), after);
      });
      batch = { changes, written };
      this.waiting.set(digest, batch);
      const settled = written.catch(() => undefined);
      this.queues.set(digest, settled);
      void settled.then(() => { if (this.queues.get(digest) === settled) this.queues.delete(digest); });
    }
    batch.changes.push(change);
    return batch.written;
  }
}

async function readTrace(store: Pick<StateStore, 'getState'>, digest: string): Promise<DigestTrace> {
  const raw = await store.getState<unknown>(traceKey(digest));
  return raw === undefined ? EMPTY : StoredDigestTrace.parse(raw);
}

/**
 * The runs with their trace: the rollouts to the digest each pushed, and the ci results of it.
 * A run that pushed nothing has an empty trace. One store read per distinct digest.
 */
export async function traceRuns(store: Pick<StateStore, 'getState'>, runs: readonly RunRecord[]): Promise<TracedRun[]> {
  const digests = [...new Set(runs.flatMap((r) => (r.image?.digest ? [r.image.digest] : [])))];
  const traces = new Map(await Promise.all(digests.map(async (d) => [d, await readTrace(store, d)] as const)));
  return runs.map((run) => ({ ...run, trace: (run.image?.digest && traces.get(run.image.digest)) || EMPTY }));
}

export async function traceRun(store: Pick<StateStore, 'getState'>, run: RunRecord): Promise<TracedRun> {
  return (await traceRuns(store, [run]))[0]!;
}
