import type { BuilderPrivilege, PipelineSpec } from '../config/index.js';
import type { RunId } from '../domain/index.js';
import type { RunImage, RunProcess, RunReason } from '../store/index.js';

/** The committed tree of one commit, already materialised in a directory (never a work tree). */
export interface SourceTree {
  readonly dir: string;
  readonly repo: string;
  readonly branch: string;
  readonly commit: string;
}

/** Where a run's output goes; the caller stores it and redacts secrets. */
export type RunLogSink = (text: string) => void;

export interface ExecutionRequest {
  readonly runId: RunId;
  readonly source: SourceTree;
  readonly pipeline: PipelineSpec;
  /**
   * Set when the pipeline is the repository's own keelson.yaml rather than the operator's: its
   * builder template is rendered without keelson's environment and the Job is checked against
   * the privileges the operator allowed for this watch (`allowBuilder`).
   */
  readonly repositoryPipeline?: { readonly allowBuilder: readonly BuilderPrivilege[] };
  /** Registry host[:port] to push to, when one is configured */
  readonly registry?: string;
  readonly log: RunLogSink;
  /** Names the stage the run is in ("step 2/3: make test", "pushing ..."), for progress lines. */
  readonly stage?: (text: string) => void;
  /** Aborted on timeout, supersession or shutdown; the executor cleans up and resolves. */
  readonly signal: AbortSignal;
  /** Records each child process group with the run before the child runs (see runCommand). */
  readonly recordProcess?: (process: RunProcess) => Promise<void>;
}

export interface ExecutionResult {
  readonly ok: boolean;
  readonly reason: RunReason;
  readonly message: string;
  readonly exitCode?: number;
  readonly image?: RunImage;
}

/** Runs one pipeline for one commit. Cleans up after itself, also when aborted. */
export interface Executor {
  readonly kind: 'local' | 'kubernetes';
  execute(request: ExecutionRequest): Promise<ExecutionResult>;
}
