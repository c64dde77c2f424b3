export { KubernetesExecutor, waitForJob, type KubernetesExecutorOptions } from './kubernetes-executor.js';
export { packSource, unpackCommand, SourceTooLargeError, type SourceArchive } from './source-archive.js';
