import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';

/**
 * Waiting reasons that the kubelet keeps retrying on its own while the pod stays Pending, so a
 * Job would wait forever: the run fails at once with what the kubelet said. `ErrImagePull` is
 * left out on purpose: it is the first failed attempt, which a registry hiccup can cause; the
 * kubelet turns a real failure into `ImagePullBackOff` seconds later.
 */
const STUCK_WAITING_REASONS = new Set([
  'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull',
  'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError',
]);

/** Why a pod will not get anywhere, phrased for the run record; undefined while it may. */
export function podProblem(pod: V1Pod): string | undefined {
  const name = pod.metadata?.name ?? 'pod';
  if (pod.status?.reason === 'Evicted') {
    return `pod ${name} was evicted from node ${pod.spec?.nodeName ?? '?'}: ${pod.status.message ?? 'no message'}` +
      ' (the node ran short of a resource; free it or give the builder resource requests)';
  }
  const disruption = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (disruption && pod.status?.phase === 'Failed') {
    return `pod ${name} was stopped by the cluster (${disruption.reason ?? 'DisruptionTarget'}: ${disruption.message ?? 'no message'})`;
  }
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const status of statuses) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && STUCK_WAITING_REASONS.has(waiting.reason)) {
      const hint = waiting.reason.includes('Image')
        ? '; check the image name and that the cluster can pull from its registry (imagePullSecrets)'
        : '';
      return `container ${status.name} of pod ${name} cannot start: ${waiting.reason}: ${waiting.message ?? 'no message'} (image ${status.image})${hint}`;
    }
  }
  return undefined;
}

/** One line on what a pod is doing, for a timeout message. */
export function describePod(pod: V1Pod): string {
  const name = pod.metadata?.name ?? 'pod';
  const phase = pod.status?.phase ?? 'Pending';
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `pod ${name} is ${phase}, not scheduled: ${unscheduled.reason ?? ''} ${unscheduled.message ?? ''}`.trim();
  const waiting = (pod.status?.containerStatuses ?? []).find((s) => s.state?.waiting);
  if (waiting) return `pod ${name} is ${phase}, container ${waiting.name} waiting: ${waiting.state!.waiting!.reason ?? ''} ${waiting.state!.waiting!.message ?? ''}`.trim();
  return `pod ${name} is ${phase}`;
}

/** Why the source claim is not bound yet, when it is not. */
export function claimProblem(claim: V1PersistentVolumeClaim, waitedMs: number): string | undefined {
  if (claim.status?.phase === 'Bound') return undefined;
  const storageClass = claim.spec?.storageClassName ?? '(the default class)';
  return `the source volume claim ${claim.metadata?.name ?? ''} was still ${claim.status?.phase ?? 'Pending'} after ${Math.round(waitedMs / 1000)}s ` +
    `(storage class ${storageClass}): no provisioner bound a volume to it; check kubernetes.storageClass and the cluster's storage provisioner`;
}

const DIGEST = /sha256:[0-9a-f]{64}/;

/**
 * The digest the builder reported: first its termination message (kaniko `--digest-file`,
 * buildah `--digestfile` into /dev/termination-log), else a `<repository>@sha256:...` line in its
 * log (kaniko prints `Pushed <repository>@sha256:...`), so a builder or a test cluster that
 * leaves the termination message empty still records it.
 */
export function reportedDigest(pods: readonly V1Pod[], logText: string, repository: string): string | undefined {
  for (const pod of pods) {
    for (const status of pod.status?.containerStatuses ?? []) {
      const found = DIGEST.exec(status.state?.terminated?.message ?? '');
      if (found) return found[0];
    }
  }
  const escaped = repository.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const fromLog = new RegExp(`(?:^|[\\s"'=])${escaped}@(sha256:[0-9a-f]{64})`, 'm').exec(logText);
  return fromLog?.[1];
}
