/**
 * Shared by the server's integration and browser tests and its benchmark: a real FileStore in a
 * temp dir seeded with runs, and small in-memory implementations of the server's source
 * interfaces (the seams the daemon fills with the git watcher, registry watcher and controller).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newRunId, type RunId } from '../../../src/domain/index.js';
import { FileStore, RunReason, type RunImage, type RunPhase, type RunRecord } from '../../../src/store/index.js';
import type {
  ApprovalInfo, ApprovalSource, GitPushEvent, GitPushSink, RegistryJobInfo, RegistrySource,
} from '../../../src/server/index.js';

export interface TempStore {
  readonly store: FileStore;
  readonly dir: string;
  remove(): Promise<void>;
}

export async function openTempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'keelson-server-'));
  const store = await FileStore.open({ stateDir: dir });
  return {
    store, dir,
    async remove() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SeedRun {
  readonly watch?: string;
  readonly commit?: string;
  /** @default 'succeeded' */
  readonly phase?: RunPhase;
  readonly log?: string;
  readonly image?: RunImage;
  readonly createdAt?: Date;
}

/** Creates a run and takes it through running to `phase`, as the pipeline would. */
export async function seedRun(store: FileStore, seed: SeedRun = {}): Promise<RunRecord> {
  const watch = seed.watch ?? 'https://git.example/team/app.git^main';
  const caret = watch.lastIndexOf('^');
  const id: RunId = newRunId(seed.createdAt ?? new Date());
  let run = await store.createRun({
    id, kind: 'build', watch, repo: watch.slice(0, caret), branch: watch.slice(caret + 1),
    commit: seed.commit ?? randomBytes(20).toString('hex'), phase: 'queued', reason: RunReason.Queued, message: 'queued',
  });
  const phase = seed.phase ?? 'succeeded';
  if (phase === 'queued') return run;
  run = await store.transitionRun(id, 'running', RunReason.Started, 'building');
  if (seed.log) await store.appendLog(id, seed.log);
  if (phase === 'running') return run;
  const reason = phase === 'succeeded' ? RunReason.StepsSucceeded : phase === 'failed' ? RunReason.BuildFailed : RunReason.Shutdown;
  return store.transitionRun(id, phase, reason, `run ${phase}`, seed.image ? { image: seed.image } : undefined);
}

/** Records every checkNow; answers jobs() with whatever the test puts in `jobList`. */
export class RecordingRegistry implements RegistrySource {
  readonly calls: Array<string | undefined> = [];
  jobList: RegistryJobInfo[] = [];

  jobs(): RegistryJobInfo[] {
    return this.jobList;
  }

  async checkNow(repository?: string): Promise<unknown[]> {
    this.calls.push(repository);
    return [];
  }
}

export class RecordingPushSink implements GitPushSink {
  readonly events: GitPushEvent[] = [];

  push(event: GitPushEvent): void {
    this.events.push(event);
  }
}

/** Approvals kept in memory; an approval leaves `pending()` once it has its votes or is rejected. */
export class MemoryApprovals implements ApprovalSource {
  private readonly items = new Map<string, ApprovalInfo & { rejected: boolean }>();

  add(id: string, workload: string, from: string, to: string, votesRequired = 1): void {
    const [namespace, kind, name] = workload.split('/') as [string, string, string];
    const now = Date.now();
    this.items.set(id, {
      id, workload: { namespace, kind, name }, changes: [{ container: 'app', from, to }], votesRequired, voters: [], rejected: false,
      createdAt: new Date(now).toISOString(), deadline: new Date(now + 24 * 3_600_000).toISOString(),
    });
  }

  get(id: string): (ApprovalInfo & { rejected: boolean }) | undefined {
    return this.items.get(id);
  }

  async pending(): Promise<ApprovalInfo[]> {
    return [...this.items.values()].filter((a) => !a.rejected && a.voters.length < a.votesRequired);
  }

  async approve(id: string, by: string): Promise<ApprovalInfo> {
    const a = this.open(id);
    const next = { ...a, voters: a.voters.includes(by) ? a.voters : [...a.voters, by] };
    this.items.set(id, next);
    return next;
  }

  async reject(id: string, _by: string): Promise<ApprovalInfo> {
    const next = { ...this.open(id), rejected: true };
    this.items.set(id, next);
    return next;
  }

  private open(id: string): ApprovalInfo & { rejected: boolean } {
    const a = this.items.get(id);
    if (!a) throw new Error(`no approval ${id}`);
    return a;
  }
}
