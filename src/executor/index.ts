import { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
import type { KubernetesExecutorOptions } from './kubernetes/index.js';
import type { Executor } from './types.js';

export type { Executor, ExecutionRequest, ExecutionResult, SourceTree, RunLogSink } from './types.js';
export { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
export { expandTags, toImageTag } from './local/image-build.js';
export { runCommand } from './local/process.js';
export { stepEnvironment, toolEnvironment, BASE_ENV_NAMES, type EnvironmentSource } from './local/environment.js';

export type ExecutorConfig =
  | ({ readonly kind: 'local' } & LocalExecutorOptions)
  | ({ readonly kind: 'kubernetes' } & KubernetesExecutorOptions);

/**
 * The one place that knows every executor. The kubernetes one is imported when asked for: it
 * loads client-node with every generated API class and model (~65 MiB of RSS), which a daemon
 * that builds locally or only rolls out never needs.
 */
export async function createExecutor(config: ExecutorConfig): Promise<Executor> {
  switch (config.kind) {
    case 'local':
      return new LocalExecutor(config);
    case 'kubernetes': {
      const { KubernetesExecutor } = await import('./kubernetes/index.js');
      return new KubernetesExecutor(config);
    }
  }
}
export type { KubernetesExecutorOptions } from './kubernetes/index.js';
