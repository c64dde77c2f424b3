/**
 * One trace per commit: commit → run → image digest → workloads rolled → ci result. Runs carry
 * the first three; this part keeps what happened to each digest afterwards and joins it back.
 */
export { TraceBook, traceKey, traceRuns, traceRun } from './trace-book.js';
export { CiResultAnnotation, CI_RESULT_ANNOTATION } from './schema.js';
export type { RolloutTrace, CiTrace, DigestTrace, TracedRun } from './types.js';
