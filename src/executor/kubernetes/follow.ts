import { BatchV1Api, CoreV1Api, Watch, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { podProblem } from './pod-status.js';

export type JobOutcome = 'Complete' | 'Failed';

/** How a followed Job ended: its condition, or a pod problem that would keep it waiting forever. */
export type JobEnd =
  | { readonly kind: 'job'; readonly outcome: JobOutcome }
  | { readonly kind: 'pod'; readonly problem: string };

interface Listed<T> {
  readonly items: T[];
  readonly metadata?: { readonly resourceVersion?: string };
}

/**
 * List, then watch from the list's resourceVersion, until `decide` returns a value for an object.
 * Whenever the watch ends (the server's timeout, a dropped connection, or 410 Gone when that
 * version is too old, which arrives as an ERROR event) it lists again, so no change is missed and
 * no stale version is reused.
 */
export async function followObjects<T, R>(
  kc: KubeConfig, path: string, query: Record<string, string>,
  list: () => Promise<Listed<T>>, decide: (object: T) => R | undefined, signal: AbortSignal,
): Promise<R> {
  for (;;) {
    signal.throwIfAborted();
    const listed = await list();
    for (const item of listed.items) {
      const done = decide(item);
      if (done !== undefined) return done;
    }
    const outcome = await new Promise<{ value: R } | 'relist'>((resolve, reject) => {
      let controller: AbortController | undefined;
      let finished = false;
      const finish = (value: { value: R } | 'relist') => {
        if (finished) return;
        finished = true;
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        resolve(value);
      };
      const onAbort = () => {
        finished = true;
        controller?.abort();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      new Watch(kc).watch(
        path,
        { ...query, resourceVersion: listed.metadata?.resourceVersion, allowWatchBookmarks: true },
        (type, object: T) => {
          if (type === 'ERROR') finish('relist');
          else if (type !== 'BOOKMARK' && type !== 'DELETED') {
            const value = decide(object);
            if (value !== undefined) finish({ value });
          }
        },
        () => finish('relist'),
      ).then((c) => {
        controller = c;
        if (finished) c.abort();
      }, () => finish('relist'));
    });
    if (outcome !== 'relist') return outcome.value;
  }
}

function outcomeOf(job: V1Job | undefined): JobOutcome | undefined {
  for (const condition of job?.status?.conditions ?? []) {
    if (condition.status === 'True' && (condition.type === 'Complete' || condition.type === 'Failed')) return condition.type;
  }
  return undefined;
}

/** Follows one Job until it completes or fails (see {@link followObjects}). */
export function waitForJob(kc: KubeConfig, namespace: string, name: string, signal: AbortSignal): Promise<JobOutcome> {
  const batch = kc.makeApiClient(BatchV1Api);
  const fieldSelector = `metadata.name=${name}`;
  return followObjects(kc, `/apis/batch/v1/namespaces/${namespace}/jobs`, { fieldSelector },
    () => batch.listNamespacedJob({ namespace, fieldSelector }), outcomeOf, signal);
}

/**
 * Follows a Job and its pods together: ends with the Job's outcome, or as soon as one of its pods
 * is stuck in a way the Job would wait on forever (an image that cannot be pulled). `seen` keeps
 * the last state of every pod, so an evicted pod that is already gone can still be described.
 */
export async function followJob(kc: KubeConfig, namespace: string, name: string, signal: AbortSignal, seen: Map<string, V1Pod>): Promise<JobEnd> {
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = `job-name=${name}`;
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  try {
    return await Promise.race([
      waitForJob(kc, namespace, name, both).then((outcome): JobEnd => ({ kind: 'job', outcome })),
      followObjects(kc, `/api/v1/namespaces/${namespace}/pods`, { labelSelector },
        () => core.listNamespacedPod({ namespace, labelSelector }),
        (pod: V1Pod): JobEnd | undefined => {
          if (pod.metadata?.name) seen.set(pod.metadata.name, pod);
          const problem = podProblem(pod);
          // An evicted pod fails the Job, whose own condition then ends the wait (a Job with
          // retries left starts another pod); only a pod stuck waiting ends it from here.
          return problem && pod.status?.phase !== 'Failed' ? { kind: 'pod', problem } : undefined;
        }, both),
    ]);
  } finally {
    stop.abort();
  }
}
