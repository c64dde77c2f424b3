import { KeelsonError } from '../errors.js';

/** A dependency named in keelson.dev/dependencies (or --dependency) that the namespace does not have. */
export class DependencyNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_DEPENDENCY_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'DependencyNotFoundError';

  constructor(readonly dependency: string, readonly namespace: string) {
    super(`dependency ${dependency}: no Deployment or StatefulSet "${dependency}" in namespace ${namespace}; create it (at 0 replicas) or fix keelson.dev/dependencies`);
  }
}

/** A dependency that did not get its ready replicas in time. */
export class DependencyTimeoutError extends KeelsonError {
  readonly code = 'KEELSON_DEPENDENCY_TIMEOUT';
  readonly exitCode = 1;
  override readonly name = 'DependencyTimeoutError';

  constructor(readonly dependency: string, readonly ready: number, readonly wanted: number, timeout: string) {
    super(`dependency ${dependency}: ${ready}/${wanted} replicas ready after ${timeout}; check its pods (kubectl describe ${dependency}) or raise --timeout`);
  }
}

/** `keelson ci` could not tell which workload it runs in. */
export class WorkloadUnknownError extends KeelsonError {
  readonly code = 'KEELSON_WORKLOAD_UNKNOWN';
  readonly exitCode = 2;
  override readonly name = 'WorkloadUnknownError';
}
