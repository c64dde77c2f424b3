import type { RunRecord } from '../store/index.js';

/** One container of one workload rolled to an image (written by the rollout controller). */
export interface RolloutTrace {
  /** `namespace/kind/name` */
  readonly workload: string;
  readonly container: string;
  /** The image it ran before */
  readonly from: string;
  /** The digest it ran before, when known (tells a same-tag rollout's two sides apart) */
  readonly fromDigest?: string;
  /** The image it was patched to, as written into the spec */
  readonly image: string;
  readonly digest: string;
  /** ISO-8601, when the patch was applied */
  readonly at: string;
  /** The approval it waited for, when it needed one */
  readonly approval?: string;
}

/** The result of one `keelson ci` run in a pod of a workload that runs this digest. */
export interface CiTrace {
  /** `namespace/kind/name` */
  readonly workload: string;
  /** The holder id `keelson ci` used (its run id) */
  readonly run: string;
  readonly exitCode: number;
  /** ISO-8601 */
  readonly finishedAt: string;
}

/** What happened to one image digest after it was pushed. */
export interface DigestTrace {
  readonly rollouts: readonly RolloutTrace[];
  readonly ci: readonly CiTrace[];
}

/**
 * A run with the rest of its commit's trace: commit → run → image digest (the run's own
 * fields) → the workloads rolled to that digest → the `keelson ci` results of those workloads.
 */
export type TracedRun = RunRecord & { readonly trace: DigestTrace };
