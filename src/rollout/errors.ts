import { KeelsonError } from '../errors.js';

/**
 * A keel.sh/* or keelson.dev/* annotation (or label) that cannot be used. The workload is skipped;
 * every other workload keeps working.
 */
export class AnnotationError extends KeelsonError {
  readonly code = 'KEELSON_BAD_ANNOTATION';
  readonly exitCode = 2;
  override readonly name = 'AnnotationError';

  constructor(readonly workload: string, readonly field: string, detail: string, options?: { cause?: unknown }) {
    super(`${workload}: ${field}: ${detail}`, options);
  }
}

/** `keelson approve ID` / `reject ID` for an id the store does not hold (never created, applied or expired). */
export class ApprovalNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_APPROVAL_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'ApprovalNotFoundError';

  constructor(readonly id: string) {
    super(`approval "${id}" not found (it was applied, rejected, expired, or never existed); list pending ones with keelson approvals`);
  }
}

/** An approval that is no longer pending (already rejected, or past its deadline). */
export class ApprovalClosedError extends KeelsonError {
  readonly code = 'KEELSON_APPROVAL_CLOSED';
  readonly exitCode = 2;
  override readonly name = 'ApprovalClosedError';

  constructor(readonly id: string, readonly status: string) {
    super(`approval "${id}" is ${status}; it can no longer be voted on`);
  }
}

/** The API server refused or kept failing a patch; retrying later may help. */
export class RolloutPatchError extends KeelsonError {
  readonly code = 'KEELSON_ROLLOUT_PATCH';
  readonly exitCode = 1;
  override readonly name = 'RolloutPatchError';

  constructor(readonly workload: string, detail: string, options?: { cause?: unknown }) {
    super(`${workload}: ${detail}`, options);
  }
}
