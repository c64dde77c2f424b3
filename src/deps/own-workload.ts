import type { V1Job, V1OwnerReference, V1ReplicaSet } from '@kubernetes/client-node';
import { statusOf, type WorkloadApi, type WorkloadKind, type WorkloadRef } from '../rollout/index.js';
import { WorkloadUnknownError } from './errors.js';

function controllerOf(refs: readonly V1OwnerReference[] | undefined): V1OwnerReference | undefined {
  return refs?.find((r) => r.controller) ?? refs?.[0];
}

/**
 * The workload a pod belongs to, following ownerReferences: Pod -> ReplicaSet -> Deployment,
 * Pod -> StatefulSet or DaemonSet, Pod -> Job -> CronJob. Undefined for a bare pod or a Job
 * without a CronJob (nothing would roll it, so nothing needs holding).
 */
export async function findOwnWorkload(api: WorkloadApi, namespace: string, podName: string): Promise<WorkloadRef | undefined> {
  let pod;
  try {
    pod = await api.pod(namespace, podName);
  } catch (error) {
    if (statusOf(error) === 404) throw new WorkloadUnknownError(`pod ${namespace}/${podName} (from POD_NAME/POD_NAMESPACE) not found; pass --workload KIND/NAME`);
    throw error;
  }
  const owner = controllerOf(pod.metadata?.ownerReferences);
  if (!owner) return undefined;
  const direct: Partial<Record<string, WorkloadKind>> = { StatefulSet: 'StatefulSet', DaemonSet: 'DaemonSet' };
  const kind = direct[owner.kind];
  if (kind) return { kind, namespace, name: owner.name };
  if (owner.kind === 'ReplicaSet') {
    const rs = await api.kube.request<V1ReplicaSet>('GET', `/apis/apps/v1/namespaces/${namespace}/replicasets/${encodeURIComponent(owner.name)}`);
    const parent = controllerOf(rs.metadata?.ownerReferences);
    return parent?.kind === 'Deployment' ? { kind: 'Deployment', namespace, name: parent.name } : undefined;
  }
  if (owner.kind === 'Job') {
    const job = await api.kube.request<V1Job>('GET', `/apis/batch/v1/namespaces/${namespace}/jobs/${encodeURIComponent(owner.name)}`);
    const parent = controllerOf(job.metadata?.ownerReferences);
    return parent?.kind === 'CronJob' ? { kind: 'CronJob', namespace, name: parent.name } : undefined;
  }
  return undefined;
}
