import type { Policy } from '../policy/index.js';
import type { Schedule } from './schedule.js';

/**
 * What the watcher needs from a registry. `repository` is `host[:port]/path` (no tag). The
 * real client in src/registry satisfies this structurally; tests and benchmarks may pass
 * anything that does.
 */
export interface RegistryReader {
  /** Every tag of the repository, all pages. */
  listTags(repository: string, options?: { readonly signal?: AbortSignal }): Promise<string[]>;
  /** The digest `reference` (a tag) resolves to now, as a HEAD of its manifest reports it. */
  manifestDigest(repository: string, reference: string, options?: { readonly signal?: AbortSignal }): Promise<string>;
}

/** One image that a workload runs and wants to hear about (usually one container of one workload). */
export interface WatchTarget {
  /** Unique per target, e.g. `deployment/default/web/app`; events name targets by it. */
  readonly id: string;
  /** `host[:port]/path`, e.g. `127.0.0.1:5000/team/app` */
  readonly repository: string;
  /** The tag running now (from the pod spec). */
  readonly current: string;
  /**
   * The digest running now when known (from the pods' `imageID`): the digest a registry
   * resolves the tag to, not a platform manifest's. A first observation that differs fires.
   */
  readonly currentDigest?: string;
  readonly policy: Policy;
  /** `keel.sh/matchTag` @default false */
  readonly matchTag?: boolean;
  /** `keel.sh/matchPreRelease` @default true */
  readonly matchPreRelease?: boolean;
  /** `keel.sh/pollSchedule` @default the watcher's defaultSchedule (`@every 1m`, Keel's default) */
  readonly schedule?: Schedule;
}

/**
 * A new digest of a followed tag (digest mode: `oldTag === newTag`) or a newer tag chosen by
 * the targets' policy (tag mode). One event covers every target that moves the same way.
 */
export interface RegistryChange {
  readonly targetIds: readonly string[];
  readonly repository: string;
  readonly oldTag: string;
  readonly newTag: string;
  /** Digest mode: the digest last seen or running; tag mode: the target's currentDigest when known */
  readonly oldDigest?: string;
  /** Digest mode only: tag mode lists tags and resolves no digests */
  readonly newDigest?: string;
}

export type ChangeListener = (change: RegistryChange) => void | Promise<void>;

/** A poll job's state, for the status page and for tests. */
export interface JobStatus {
  /** `host/path` (tag mode) or `host/path:tag` (digest mode) */
  readonly key: string;
  readonly mode: 'tags' | 'digest';
  readonly repository: string;
  /** Digest mode: the followed tag */
  readonly tag?: string;
  readonly schedule: string;
  readonly targetIds: readonly string[];
  /** ISO-8601 */
  readonly nextCheckAt: string;
  readonly lastCheckedAt?: string;
  /** Failed checks in a row; the job backs off while this is above 0 */
  readonly failures: number;
  readonly lastError?: string;
}

/** What one `pollOnce()` did. */
export interface PollResult {
  /** Jobs checked (each made one registry request) */
  readonly checked: number;
  readonly failed: number;
  readonly changes: readonly RegistryChange[];
}
