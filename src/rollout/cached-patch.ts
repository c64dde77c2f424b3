import { RolloutPatchError } from './errors.js';
import { statusOf, type WorkloadApi } from './kube.js';
import type { KubeWorkload } from './patch.js';
import { workloadKey, type WorkloadRef } from './types.js';

/** What a decision returns: the patch (carrying the resourceVersion it was decided on) and a result. */
export type PatchDecision<T> = { patch: object; result: T; strategy?: Parameters<WorkloadApi['patch']>[2] } | undefined;

/** Where the object a decision is made on came from. */
export type DecidedOn = 'cache' | 'api';

export interface CachedPatchOptions {
  /** Tries in all (the cached one included) before giving up on a workload that keeps changing. @default 5 */
  readonly attempts?: number;
  /** Wait before attempt n+1 after a conflict: n x this. @default 20 */
  readonly conflictDelayMs?: number;
}

function resourceVersionOf(patch: object): string | undefined {
  return (patch as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion as string | undefined;
}

/**
 * Decides on the informer's copy of the workload first (no read), then on fresh reads. The patch
 * carries the resourceVersion it was decided on, so the API server refuses it (409) when the
 * workload changed since: a stale copy can never overwrite a newer spec. A refused patch decided on
 * the copy (409, or 422 when the copy no longer matches the spec) is decided again on a fresh read,
 * and a fresh decision is retried on 409 up to `attempts` in all. Returns what `compute` returned
 * with the patched object, or undefined when it declined or the workload is gone.
 */
export async function patchFromCache<T>(
  api: Pick<WorkloadApi, 'get' | 'patch'>,
  ref: WorkloadRef,
  cached: KubeWorkload | undefined,
  compute: (workload: KubeWorkload, decidedOn: DecidedOn) => Promise<PatchDecision<T>> | PatchDecision<T>,
  options: CachedPatchOptions = {},
): Promise<{ result: T; workload: KubeWorkload } | undefined> {
  const attempts = options.attempts ?? 5;
  const delayMs = options.conflictDelayMs ?? 20;
  // Without a resourceVersion the copy cannot guard its patch: read instead.
  let fromCache = cached?.metadata?.resourceVersion !== undefined;
  let lastConflict: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const decidedOn: DecidedOn = fromCache ? 'cache' : 'api';
    const current = fromCache ? cached : await api.get(ref);
    fromCache = false;
    if (!current) return undefined;
    const decision = await compute(current, decidedOn);
    if (!decision) return undefined;
    if (resourceVersionOf(decision.patch) !== current.metadata?.resourceVersion) {
      throw new TypeError(`patchFromCache: the patch for ${workloadKey(ref)} must carry the resourceVersion it was decided on`);
    }
    try {
      const workload = await api.patch(ref, decision.patch, decision.strategy);
      return { result: decision.result, workload };
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || (status === 422 && decidedOn === 'cache')) {
        lastConflict = error;
        if (decidedOn === 'api') await new Promise((resolve) => setTimeout(resolve, delayMs * (attempt + 1)));
        continue;
      }
      throw error;
    }
  }
  throw new RolloutPatchError(workloadKey(ref), `still conflicting after ${attempts} attempts (someone keeps changing it)`, { cause: lastConflict });
}

/**
 * Reads the workload, lets `compute` decide on the fresh object, and applies the patch it
 * returns (carrying the resourceVersion it was computed from); a 409 conflict reads again and
 * recomputes, up to `attempts` times. For changes that must never be decided on the informer's copy.
 */
export function patchOnFreshState<T>(
  api: Pick<WorkloadApi, 'get' | 'patch'>,
  ref: WorkloadRef,
  compute: (workload: KubeWorkload) => Promise<PatchDecision<T>> | PatchDecision<T>,
  attempts = 5,
): Promise<{ result: T; workload: KubeWorkload } | undefined> {
  return patchFromCache(api, ref, undefined, compute, { attempts });
}
