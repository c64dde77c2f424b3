export { PipelineRunner, REPOSITORY_PIPELINE_FILE, type PipelineRunnerOptions } from './runner.js';
export type { PipelineEvent, PipelineOutcome, SourceMaterializer, WatchRef } from './types.js';
