import type { Policy } from '../policy/index.js';

/** The workload kinds keelson rolls, as Keel does. */
export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob'];

export interface WorkloadRef {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
}

/** `namespace/kind/name` with the kind in lower case: store keys, approval ids, logs. */
export function workloadKey(ref: WorkloadRef): string {
  return `${ref.namespace}/${ref.kind.toLowerCase()}/${ref.name}`;
}

/** How a registry watcher observes an image for us (the same words as src/policy's WatchMode). */
export type TargetMode = 'tags' | 'digest';

/**
 * One image to poll, shared by every workload that runs it: one poll job per distinct
 * (repository, tag), whatever the number of workloads.
 */
export interface ImageTarget {
  /** `registry/repository`, Docker Hub as `docker.io/library/nginx` */
  readonly repository: string;
  /** The tag the workloads run */
  readonly tag: string;
  /** The digest the running workloads are pinned to, when the spec says `tag@sha256:...` */
  readonly digest?: string;
  /** Keel's pollSchedule: six-field cron with seconds, five-field cron, `@every 1m`, `@hourly`... */
  readonly schedule: string;
  /** `tags`: list the repository's tags and let the policy choose; `digest`: follow this tag's digest */
  readonly mode: TargetMode;
  /** `namespace/kind/name` of every workload behind this target, sorted */
  readonly workloads: readonly string[];
}

/** A change seen in a registry (by a poll, a webhook, or a test). */
export interface ImageUpdate {
  /** `registry/repository` as in ImageTarget */
  readonly repository: string;
  /** The tag that was pushed or that the watcher found */
  readonly tag: string;
  /** That tag's manifest digest now, `sha256:<hex>` (needed to follow a re-pushed tag or to pin) */
  readonly digest?: string;
  /** Every tag the registry listed, when the watcher listed them (semver and pattern policies) */
  readonly tags?: readonly string[];
  /**
   * The digest the tag had before (the registry watcher's last observation). The baseline of last
   * resort when neither the pods (no `imageID`, as under kwok) nor a pinned spec nor a record says
   * what runs: without it the first push after a start would only be adopted, never rolled.
   */
  readonly previousDigest?: string;
  /** When the source saw it (ISO-8601): where keelson_push_to_rollout_seconds starts. Not kept across restarts. */
  readonly seenAt?: string;
}

/**
 * One watched container of one workload, as a registry watcher takes it (src/registry-watch's
 * WatchTarget has the same shape with a parsed schedule): the watcher groups these into one poll
 * job per distinct image.
 */
export interface WorkloadImageTarget {
  /** `namespace/kind/name/container` (init containers: `.../init:container`) */
  readonly id: string;
  readonly repository: string;
  /** The tag running now */
  readonly current: string;
  /** The digest the spec pins, when it does */
  readonly currentDigest?: string;
  readonly policy: Policy;
  readonly matchTag: boolean;
  readonly matchPreRelease: boolean;
  /** Keel's pollSchedule text */
  readonly schedule: string;
}

/**
 * Where image changes come from. The registry watcher (through RegistryWatcherSource) implements
 * it; the controller tells it what to watch (the full set, each time it changes) and listens.
 * Kept this small so a webhook or a test can drive the controller too.
 */
export interface ImageEventSource {
  setTargets(targets: readonly WorkloadImageTarget[]): void | Promise<void>;
  /**
   * Returns a function that removes the listener. A source that persists what it has reported
   * (the registry watcher's baselines) waits for the listener's promise first, so an update is
   * never marked seen before the controller has stored or applied it (keelson killed in between).
   */
  onUpdate(listener: (update: ImageUpdate) => void | Promise<void>): () => void;
}

/** Resolves a tag to its manifest digest (the registry client), used to pin `tag@sha256:...`. */
export type DigestResolver = (repository: string, tag: string) => Promise<string | undefined>;

/** One container's image change inside one workload. */
export interface ContainerChange {
  readonly container: string;
  /** `init` containers are only watched when `keel.sh/initContainers: "true"` */
  readonly init: boolean;
  readonly from: string;
  readonly to: string;
  /** The digest rolled to, when known */
  readonly digest?: string;
  /** The digest it ran before, when known: a same-tag change differs only in digests */
  readonly fromDigest?: string;
}

/** What the controller did with one workload for one update. Constants, so tests and the API can match. */
export const RolloutOutcome = {
  Applied: 'Applied',
  UpToDate: 'UpToDate',
  AlreadyApplied: 'AlreadyApplied',
  NoCandidate: 'NoCandidate',
  Held: 'Held',
  AwaitingApproval: 'AwaitingApproval',
  Rejected: 'Rejected',
  Expired: 'Expired',
  Gone: 'Gone',
  Failed: 'Failed',
} as const;
export type RolloutOutcome = (typeof RolloutOutcome)[keyof typeof RolloutOutcome];

export interface RolloutResult {
  readonly workload: WorkloadRef;
  readonly outcome: RolloutOutcome;
  readonly changes: readonly ContainerChange[];
  readonly message: string;
  /** Set with AwaitingApproval */
  readonly approvalId?: string;
}

/** What the store keeps per workload (`rollout:<namespace>/<kind>/<name>`), so a restart never repeats an update. */
export interface RolloutRecord {
  /** Last image applied per container name, with its digest when known */
  readonly containers: Readonly<Record<string, { readonly image: string; readonly digest?: string; readonly at: string }>>;
  readonly lastChanges: readonly ContainerChange[];
  readonly updatedAt: string;
}

/** One container of a followed workload, as the status page shows it. */
export interface WorkloadImageView {
  readonly container: string;
  /** The image the spec runs now */
  readonly current: string;
  /** The image it would roll to: an update held by a build, waiting for approval, or whose patch failed */
  readonly candidate?: string;
  /** Why the candidate is not applied yet (Held, AwaitingApproval, Failed) */
  readonly candidateReason?: string;
  /** The last rollout keelson applied to this container */
  readonly rolledOut?: { readonly image: string; readonly digest?: string; readonly at: string };
}

/** A followed workload as the status page shows it (src/server's WorkloadInfo has this shape). */
export interface WorkloadView {
  /** `namespace/kind/name` */
  readonly key: string;
  /** `keel.sh/policy` as written */
  readonly policy?: string;
  /** `@every 1m` for `keel.sh/trigger: poll` workloads */
  readonly pollSchedule?: string;
  readonly approvals?: number;
  readonly images: readonly WorkloadImageView[];
  /** Builds holding its rollouts now */
  readonly heldBy?: readonly string[];
  /** The last decision about it */
  readonly lastDecision?: { readonly outcome: RolloutOutcome; readonly message: string; readonly at: string };
  /** Why it is skipped (bad annotations) */
  readonly error?: string;
}
