import { PatchType } from '../kube/index.js';
import {
  buildAnnotationPatch, containersOf, digestOfImageId, patchOnFreshState, type WorkloadApi, type WorkloadRef,
} from '../rollout/index.js';
import { CI_RESULT_ANNOTATION, type CiResultAnnotation } from '../trace/index.js';

/**
 * Leaves the result of a `keelson ci` run on its workload (keelson.dev/ci-result), with the
 * images it tested, so the daemon adds it to the trace of that digest. Called while the hold
 * is still on: the workload cannot have rolled to another image in between. The images come
 * from the pod (`POD_NAME`) with the digests its runtime reports, else from the workload's spec.
 */
export async function recordCiResult(api: WorkloadApi, ref: WorkloadRef, podName: string | undefined, run: string, exitCode: number, finishedAt: Date): Promise<CiResultAnnotation | undefined> {
  let images: CiResultAnnotation['images'] = [];
  if (podName) {
    const pod = await api.pod(ref.namespace, podName);
    const digests = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, digestOfImageId(s.imageID)]));
    images = (pod.spec?.containers ?? []).filter((c) => c.image).map((c) => {
      const digest = digests.get(c.name);
      return { container: c.name, image: c.image!, ...(digest ? { digest } : {}) };
    });
  }
  const done = await patchOnFreshState(api, ref, (fresh) => {
    const value: CiResultAnnotation = {
      run, exitCode, finishedAt: finishedAt.toISOString(),
      images: images.length > 0 ? images : containersOf(ref.kind, fresh, false).filter((c) => c.image).map((c) => ({ container: c.name, image: c.image! })),
    };
    return { patch: buildAnnotationPatch(fresh.metadata?.resourceVersion, CI_RESULT_ANNOTATION, JSON.stringify(value)), strategy: PatchType.Merge, result: value };
  });
  return done?.result;
}
