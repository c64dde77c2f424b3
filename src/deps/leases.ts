import { PatchType } from '../kube/index.js';
import {
  buildAnnotationPatch, formatLeaseSet, liveHolders, parseLeaseSet, patchOnFreshState, withHolder, withoutHolder,
  type KubeWorkload, type WorkloadApi, type WorkloadRef,
} from '../rollout/index.js';

export interface LeaseChange {
  /** Live holders after the change */
  readonly holders: readonly string[];
  /** spec.replicas after the change (undefined when the object has no replicas, or we left it) */
  readonly replicas?: number;
}

/**
 * Adds (`until` set) or removes (`until` undefined) `holder` in the lease annotation `key` of one
 * object, with a resourceVersion-checked merge patch retried on 409, so concurrent runs never
 * lose each other's entries. `replicasFor` may set spec.replicas in the same patch, from the
 * live holders and the fresh object: scaling and the lease change are one atomic write.
 */
export async function changeLease(
  api: WorkloadApi,
  ref: WorkloadRef,
  key: string,
  holder: string,
  until: Date | undefined,
  now: () => Date,
  replicasFor?: (holders: readonly string[], fresh: KubeWorkload) => number | undefined,
): Promise<LeaseChange | undefined> {
  const done = await patchOnFreshState(api, ref, (fresh) => {
    const at = now();
    const current = parseLeaseSet(fresh.metadata?.annotations?.[key]);
    const next = until ? withHolder(current, holder, until, at) : withoutHolder(current, holder, at);
    const holders = liveHolders(next, at);
    const replicas = replicasFor?.(holders, fresh);
    const changedReplicas = replicas !== undefined && replicas !== fresh.spec?.replicas ? replicas : undefined;
    return {
      patch: buildAnnotationPatch(fresh.metadata?.resourceVersion, key, formatLeaseSet(next), changedReplicas),
      strategy: PatchType.Merge,
      result: { holders, ...(replicas !== undefined ? { replicas } : {}) },
    };
  });
  return done?.result;
}
