import type { V1Container, V1ObjectMeta, V1PodTemplateSpec } from '@kubernetes/client-node';
import { KEELSON_UPDATE_TIME_ANNOTATION, UPDATE_TIME_ANNOTATION } from './schema.js';
import type { ContainerChange, WorkloadKind } from './types.js';

/** The parts of any of the four workload kinds that we read. */
export interface KubeWorkload {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: V1ObjectMeta;
  readonly spec?: {
    readonly template?: V1PodTemplateSpec;
    readonly jobTemplate?: { readonly spec?: { readonly template?: V1PodTemplateSpec } };
    readonly replicas?: number;
    readonly selector?: { readonly matchLabels?: Record<string, string>; readonly matchExpressions?: ReadonlyArray<{ key: string; operator: string; values?: string[] }> };
  };
}

/** Where the pod template sits: CronJobs have theirs inside the job template. */
export function podTemplateOf(kind: WorkloadKind, workload: KubeWorkload): V1PodTemplateSpec | undefined {
  return kind === 'CronJob' ? workload.spec?.jobTemplate?.spec?.template : workload.spec?.template;
}

export function containersOf(kind: WorkloadKind, workload: KubeWorkload, init: boolean): readonly V1Container[] {
  const spec = podTemplateOf(kind, workload)?.spec;
  return (init ? spec?.initContainers : spec?.containers) ?? [];
}

/**
 * The strategic-merge patch for an update: only the changed containers' images (merged by
 * container name) and the pod-template update-time annotations, never a full object. The
 * resourceVersion makes the API server refuse it with 409 when the workload changed since we
 * read it, so the caller recomputes on fresh state instead of overwriting someone's edit.
 */
export function buildImagePatch(kind: WorkloadKind, resourceVersion: string | undefined, changes: readonly ContainerChange[], now: Date): Record<string, unknown> {
  const stamp = now.toISOString();
  const containers = changes.filter((c) => !c.init).map((c) => ({ name: c.container, image: c.to }));
  const initContainers = changes.filter((c) => c.init).map((c) => ({ name: c.container, image: c.to }));
  const template = {
    metadata: { annotations: { [UPDATE_TIME_ANNOTATION]: stamp, [KEELSON_UPDATE_TIME_ANNOTATION]: stamp } },
    spec: {
      ...(containers.length > 0 ? { containers } : {}),
      ...(initContainers.length > 0 ? { initContainers } : {}),
    },
  };
  const spec = kind === 'CronJob' ? { jobTemplate: { spec: { template } } } : { template };
  return {
    metadata: resourceVersion === undefined ? {} : { resourceVersion },
    spec,
  };
}

/**
 * A metadata-only merge patch of one annotation (null removes it), optionally with
 * `spec.replicas`: holds and dependency leases. Never touches the pod template, so it never
 * restarts pods.
 */
export function buildAnnotationPatch(resourceVersion: string | undefined, key: string, value: string | null, replicas?: number): Record<string, unknown> {
  return {
    metadata: { ...(resourceVersion === undefined ? {} : { resourceVersion }), annotations: { [key]: value } },
    ...(replicas === undefined ? {} : { spec: { replicas } }),
  };
}
