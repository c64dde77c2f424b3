import { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
import { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes/index.js';
import type { Executor } from './types.js';

export type { Executor, ExecutionRequest, ExecutionResult, SourceTree, RunLogSink } from './types.js';
export { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
export { expandTags, toImageTag } from './local/image-build.js';
export { runCommand } from './local/process.js';
export { stepEnvironment, toolEnvironment, BASE_ENV_NAMES, type EnvironmentSource } from './local/environment.js';

export type ExecutorConfig =
  | ({ readonly kind: 'local' } & LocalExecutorOptions)
  | ({ readonly kind: 'kubernetes' } & KubernetesExecutorOptions);

/** The one place that knows every executor. */
export function createExecutor(config: ExecutorConfig): Executor {
  switch (config.kind) {
    case 'local':
      return new LocalExecutor(config);
    case 'kubernetes':
      return new KubernetesExecutor(config);
  }
}
export { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes/index.js';
