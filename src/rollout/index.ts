/**
 * Keel-compatible rollouts: annotations and labels (keel.sh/* and keelson.dev/*), workload
 * discovery, image patches on fresh state, approvals, and the build hold.
 */
export { RolloutController, rolloutRecordKey, type RolloutControllerOptions } from './controller.js';
export {
  KeelAnnotations, readWorkloadSettings, lookupSetting, isManaged, isPollSchedule, SETTING_NAMES,
  DEFAULT_POLL_SCHEDULE, DEFAULT_APPROVAL_DEADLINE_HOURS, UPDATE_TIME_ANNOTATION, KEELSON_UPDATE_TIME_ANNOTATION,
  type WorkloadSettings, type SettingName,
} from './schema.js';
export { ApprovalBook, approvalStatus, approvalId, describeChanges, type Approval, type ApprovalStatus } from './approvals.js';
export {
  HOLD_ANNOTATION, HOLD_UNTIL_ANNOTATION, parseLeaseSet, liveHolders, nextExpiry, withHolder, withoutHolder,
  formatLeaseSet, readHold, type LeaseSet, type HoldState,
} from './lease.js';
export { buildImagePatch, buildAnnotationPatch, podTemplateOf, containersOf, type KubeWorkload } from './patch.js';
export { WorkloadApi, statusOf, apiMessage } from './kube.js';
export { patchOnFreshState } from './cached-patch.js';
export { computeTargets } from './targets.js';
export { digestOfImageId } from './plan.js';
export type { WorkloadListener } from './discovery.js';
export { RegistryWatcherSource } from './registry-source.js';
export { AnnotationError, ApprovalNotFoundError, ApprovalClosedError, RolloutPatchError } from './errors.js';
export * from './types.js';
