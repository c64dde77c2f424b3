import { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
import type { Executor } from './types.js';

export type { Executor, ExecutionRequest, ExecutionResult, SourceTree, RunLogSink } from './types.js';
export { LocalExecutor, type LocalExecutorOptions } from './local/local-executor.js';
export { expandTags, toImageTag } from './local/image-build.js';
export { runCommand } from './local/process.js';

export type ExecutorConfig =
  | ({ readonly kind: 'local' } & LocalExecutorOptions);

/** The one place that knows every executor. */
export function createExecutor(config: ExecutorConfig): Executor {
  switch (config.kind) {
    case 'local':
      return new LocalExecutor(config);
  }
}
