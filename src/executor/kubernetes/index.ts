export { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes-executor.js';
export { waitForJob, followJob, followObjects, type JobOutcome, type JobEnd } from './follow.js';
export { packSource, unpackCommand, SourceTooLargeError, type SourceArchive } from './source-archive.js';
export { runNamespace, runLabels, repositoryName, REGISTRY_SECRET } from './naming.js';
export { builderValues, registrySecret, DEFAULT_BUILDER_IMAGES } from './builder-job.js';
export { podProblem, claimProblem, reportedDigest } from './pod-status.js';
