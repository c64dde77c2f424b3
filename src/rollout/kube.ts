import type { V1Pod } from '@kubernetes/client-node';
import { PatchType, statusOf, type KubeClient } from '../kube/index.js';
import type { KubeWorkload } from './patch.js';
import type { WorkloadKind, WorkloadRef } from './types.js';

export { statusOf, apiMessage } from '../kube/index.js';

/** Where the four kinds are listed and watched. */
export function watchPath(kind: WorkloadKind, namespace?: string): string {
  const group = kind === 'CronJob' ? '/apis/batch/v1' : '/apis/apps/v1';
  const plural = `${kind.toLowerCase()}s`;
  return namespace ? `${group}/namespaces/${namespace}/${plural}` : `${group}/${plural}`;
}

function objectPath(ref: WorkloadRef): string {
  return `${watchPath(ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`;
}

/**
 * Reads and patches the four workload kinds by one interface, over the small API client: the
 * daemon never loads client-node's generated API classes and models.
 */
export class WorkloadApi {
  constructor(readonly kube: KubeClient) {}

  /** The workload, or undefined when it does not exist (404). */
  async get(ref: WorkloadRef): Promise<KubeWorkload | undefined> {
    try {
      return await this.kube.request<KubeWorkload>('GET', objectPath(ref));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** A patch of the given type (strategic merge by default), written by field manager `keelson`. */
  async patch(ref: WorkloadRef, body: object, type: PatchType = PatchType.StrategicMerge): Promise<KubeWorkload> {
    return this.kube.request<KubeWorkload>('PATCH', objectPath(ref), { query: { fieldManager: 'keelson' }, body, contentType: type });
  }

  /** A pod; rejects with a 404 KubeApiError when there is none. */
  async pod(namespace: string, name: string): Promise<V1Pod> {
    return this.kube.request<V1Pod>('GET', `/api/v1/namespaces/${namespace}/pods/${encodeURIComponent(name)}`);
  }

  /**
   * The running pods of a workload (found by its selector, not being deleted). CronJobs have no
   * selector and no long-running pods: none.
   */
  async runningPods(ref: WorkloadRef, workload: KubeWorkload): Promise<V1Pod[]> {
    const selector = workload.spec?.selector;
    if (ref.kind === 'CronJob' || !selector) return [];
    const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
    for (const expr of selector.matchExpressions ?? []) {
      const values = (expr.values ?? []).join(',');
      if (expr.operator === 'In') parts.push(`${expr.key} in (${values})`);
      else if (expr.operator === 'NotIn') parts.push(`${expr.key} notin (${values})`);
      else if (expr.operator === 'Exists') parts.push(expr.key);
      else if (expr.operator === 'DoesNotExist') parts.push(`!${expr.key}`);
    }
    if (parts.length === 0) return [];
    const pods = await this.kube.request<{ items?: V1Pod[] }>('GET', `/api/v1/namespaces/${ref.namespace}/pods`, { query: { labelSelector: parts.join(',') } });
    return (pods.items ?? []).filter((pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp);
  }

  /** A core/v1 Event on the workload, as `kubectl describe` shows it. Best effort: never throws; false when it was not recorded. */
  async recordEvent(ref: WorkloadRef, workload: KubeWorkload | undefined, reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<boolean> {
    const now = new Date().toISOString();
    try {
      await this.kube.request('POST', `/api/v1/namespaces/${ref.namespace}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
          involvedObject: {
            apiVersion: ref.kind === 'CronJob' ? 'batch/v1' : 'apps/v1',
            kind: ref.kind,
            name: ref.name,
            namespace: ref.namespace,
            ...(workload?.metadata?.uid ? { uid: workload.metadata.uid } : {}),
            ...(workload?.metadata?.resourceVersion ? { resourceVersion: workload.metadata.resourceVersion } : {}),
          },
          reason,
          message,
          type,
          source: { component: 'keelson' },
          reportingComponent: 'keelson.dev/rollout',
          reportingInstance: 'keelson',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      return true;
    } catch {
      // An event is a courtesy to the person running kubectl describe; the store has the record.
      return false;
    }
  }
}

