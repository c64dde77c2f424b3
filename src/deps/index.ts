/** Dependencies on demand: scale what a build's tests need up for the run, and back to 0 after it. */
export { runWithDependencies, type RunWithDependenciesOptions } from './run.js';
export { parseDependencies, DependencyItem, DEPENDENCIES_ANNOTATION, DEPENDENCY_LEASE_ANNOTATION, type DependencySpec, type DependencyKind } from './schema.js';
export { serviceEnv, envName } from './endpoints.js';
export { changeLease, type LeaseChange } from './leases.js';
export { findOwnWorkload } from './own-workload.js';
export { DependencyTracker, type DependencyView } from './tracker.js';
export { recordCiResult } from './ci-result.js';
export { DependencyNotFoundError, DependencyTimeoutError, WorkloadUnknownError } from './errors.js';
