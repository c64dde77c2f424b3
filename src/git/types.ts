import type { Logger } from '../log/index.js';

/**
 * One watched (repository, branch). Parsed once from `REPO[^BRANCH]` by `parseWatchSpec`.
 * Two branches of one repository are two watches with two keys.
 */
export interface WatchSpec {
  /** `<normalised repo>^<branch>`, `^HEAD` when following the default branch. Never holds a
   * credential; used as the store key (`watch:<key>`) and in run records. */
  readonly key: string;
  /** What git is given: the URL as written (it may carry credentials, which are registered as
   * secrets), or the absolute path of a local repository. Never log this; log `display`. */
  readonly repo: string;
  readonly kind: 'remote' | 'local';
  /** Absent: follow the repository's default branch (the remote's HEAD symref, or the local
   * repository's HEAD), resolved on every poll. */
  readonly branch?: string;
  /** For people and logs: the spec as written, without credentials. */
  readonly display: string;
  /** This watch's own poll schedule (the operator's `watches[].schedule`). @default the watcher's */
  readonly schedule?: string;
}

/** The tip of the watched branch at one moment. */
export interface Head {
  /** The branch name, resolved from HEAD when the watch follows the default branch */
  readonly branch: string;
  /** Full 40-hex (or 64-hex) object name */
  readonly commit: string;
}

/** Reads the tip of one watch's branch. Throws GitUnreachableError, GitAuthError or
 * GitBranchNotFoundError; never prompts. */
export interface HeadReader {
  readHead(signal?: AbortSignal): Promise<Head>;
}

export interface TriggerEvent {
  readonly watch: WatchSpec;
  readonly commit: string;
  readonly branch: string;
  /** Commits seen by polls while the previous run was going, older first, that are not built:
   * the pipeline records them as skipped runs. */
  readonly skipped: readonly string[];
  /** Commits not built beyond those in `skipped` (a long backlog): one summary record. */
  readonly skippedOmitted?: { readonly count: number; readonly newest: string };
}

/** Where a watch stands after a restart, from the pipeline's records. */
export interface ResumePoint {
  /** A commit whose run was cut off by a crash: run once more before anything newer. */
  readonly retry?: string;
  /** The newest commit whose run finished, and when: newer than the watch state when keelson
   * died between the end of that run and writing the state. */
  readonly finished?: { readonly commit: string; readonly at: string };
}

/**
 * What the watcher calls when a watch has a new commit: runs the pipeline for it. The promise
 * settles when the run has ended (the commit is then marked done, also when the run failed).
 * When `signal` aborts (shutdown) the pipeline stops the run and settles.
 */
export interface PipelineTrigger {
  trigger(event: TriggerEvent, signal: AbortSignal): Promise<{ ok: boolean }>;
  /** Asked once per watch before its first poll. */
  resume?(watchKey: string): Promise<ResumePoint>;
}

/** The commits of a watch's branch between two commits, for the skipped records. */
export interface CommitHistory {
  /**
   * Commits reachable from `to` but not from `from` (`git rev-list to ^from`), without `to`,
   * oldest first, at most `limit`; `omitted` counts the older ones left out and `newestOmitted`
   * names the newest of those.
   */
  between(spec: WatchSpec, from: string, to: string, limit: number, signal?: AbortSignal): Promise<CommitRange>;
}

export interface CommitRange {
  readonly commits: readonly string[];
  readonly omitted: number;
  readonly newestOmitted?: string;
}

/** Options shared by the git helpers that run git. */
export interface GitCommandOptions {
  readonly signal?: AbortSignal;
  /** Kill git after this long. @default 120_000 ms (network commands may hang on connect) */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}
