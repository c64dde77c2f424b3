import type { RunId } from '../domain/index.js';

/** Where a run is in its life. Terminal phases never change again. */
export type RunPhase =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'skipped'       // coalesced: a newer commit of the same watch was built instead
  | 'interrupted'   // keelson died or was stopped while the run was going
  | 'cancelled';    // superseded or aborted on purpose

export const TERMINAL_PHASES: readonly RunPhase[] = ['succeeded', 'failed', 'skipped', 'interrupted', 'cancelled'];

export function isTerminal(phase: RunPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

/** Why a run moved to a phase. Constants, so that tools and tests can match them. */
export const RunReason = {
  Queued: 'Queued',
  Started: 'Started',
  StepsSucceeded: 'StepsSucceeded',
  StepFailed: 'StepFailed',
  TimedOut: 'TimedOut',
  BuildFailed: 'BuildFailed',
  PushFailed: 'PushFailed',
  SourceFailed: 'SourceFailed',
  Coalesced: 'Coalesced',
  Superseded: 'Superseded',
  ProcessDied: 'ProcessDied',
  Shutdown: 'Shutdown',
  ExecutorError: 'ExecutorError',
  InvalidPipeline: 'InvalidPipeline',
  GaveUp: 'GaveUp',
} as const;
export type RunReason = (typeof RunReason)[keyof typeof RunReason];

export interface PhaseTransition {
  readonly phase: RunPhase;
  readonly reason: RunReason;
  readonly message: string;
  /** ISO-8601 */
  readonly at: string;
}

/** What kind of work the run did. */
export type RunKind = 'build' | 'deploy' | 'ci';

export interface RunImage {
  /** e.g. 127.0.0.1:5000/team/app:main */
  readonly ref: string;
  /** sha256:... when pushed; absent when the image stayed in local storage */
  readonly digest?: string;
  readonly pushed: boolean;
}

export interface RunRecord {
  readonly id: RunId;
  readonly kind: RunKind;
  /** The watch key, `repo^branch` */
  readonly watch: string;
  readonly repo: string;
  readonly branch: string;
  readonly commit: string;
  readonly phase: RunPhase;
  readonly reason: RunReason;
  readonly message: string;
  readonly phases: readonly PhaseTransition[];
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** Exit code of the failing step, when a step failed */
  readonly exitCode?: number;
  readonly image?: RunImage;
  /** Set on the retry of an interrupted run */
  readonly retryOf?: RunId;
  /** The commits that were coalesced into this run (skipped in its favour) */
  readonly skippedCommits?: readonly string[];
  /** The executor that ran it */
  readonly executor?: string;
  /** The process that created the run and drives it (`StoreOwnership.owner`); set by the store.
   * A run whose owner is still alive is never recovered by another process. */
  readonly owner?: string;
  /** Every child process group the run started (local executor, deploys), recorded before the
   * child runs, so that a keelson that was killed can end them on its next start. */
  readonly processes?: readonly RunProcess[];
}

/** A process group a run started: its leader, as processIdentity() describes it. */
export interface RunProcess {
  /** The leader's pid, which is also the group id. */
  readonly pid: number;
  /** See ProcessIdentity.startTime; absent where the host has no /proc. */
  readonly startTime?: string;
  /** What it runs, for people (`sh`, `buildah`); never its arguments, which may hold secrets. */
  readonly command: string;
}

/** What a caller gives to create a run; the store adds the timestamps and the phase history. */
export type NewRun = Pick<RunRecord,
  'id' | 'kind' | 'watch' | 'repo' | 'branch' | 'commit' | 'phase' | 'reason' | 'message' | 'retryOf' | 'skippedCommits' | 'executor'>;

/** Fields a transition may set besides the phase. */
export interface RunUpdate {
  readonly exitCode?: number;
  readonly image?: RunImage;
}

export interface RunFilter {
  readonly watch?: string;
  readonly phase?: RunPhase;
  /** Newest first; @default 100 */
  readonly limit?: number;
}

/** Writes runs. A transition out of a terminal phase is refused (the record stays as it was). */
export interface RunWriter {
  createRun(run: NewRun): Promise<RunRecord>;
  transitionRun(id: RunId, phase: RunPhase, reason: RunReason, message: string, update?: RunUpdate): Promise<RunRecord>;
  /** Adds a child process group to a run that has not finished (RunAlreadyFinishedError else).
   * Resolves once it is durable: the child may start then. */
  recordRunProcess(id: RunId, process: RunProcess): Promise<void>;
}

/** A stored run record that cannot be read, with where it is, so a person can move it away. */
export interface CorruptRun {
  /** The run id, from the file or key name */
  readonly id: string;
  /** The file (file store) or key (Redis) */
  readonly where: string;
  readonly problem: string;
}

/** Finds the records listRuns had to leave out. */
export interface CorruptRunReader {
  corruptRuns(): Promise<CorruptRun[]>;
}

/**
 * Which process a run belongs to. Each store stamps runs it creates with its process's `owner`;
 * recovery after a crash only takes over runs whose owner is gone.
 */
export interface RunOwnership {
  readonly owner: string;
  ownerAlive(owner: string): Promise<boolean>;
  /** How long a dead owner may still look alive (Redis: its key's TTL; files: 0, exact). */
  readonly ownerTtlMs: number;
}

export interface RunReader {
  getRun(id: RunId): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(filter?: RunFilter): Promise<RunRecord[]>;
}

/** A run's log: append-only text. Offsets are in bytes of UTF-8. */
export interface RunLogStore {
  appendLog(id: RunId, text: string): Promise<void>;
  readLog(id: RunId, fromOffset?: number): Promise<{ text: string; offset: number }>;
}

/**
 * Small JSON state that must survive restarts: the last built commit per watch, registry
 * baselines, rollout records. Keys are namespaced by the caller (`watch:`, `registry:`...).
 */
export interface StateStore {
  getState<T>(key: string): Promise<T | undefined>;
  setState<T>(key: string, value: T): Promise<void>;
  deleteState(key: string): Promise<void>;
}

export interface Store extends RunWriter, RunReader, CorruptRunReader, RunOwnership, RunLogStore, StateStore {
  /** e.g. `file:/var/lib/keelson` or `redis://host:6379/0` (without credentials) */
  readonly description: string;
  close(): Promise<void>;
}
