import type { RunId } from '../domain/index.js';

/** What the pipeline needs from the git part: the committed tree of a commit in a directory. */
export interface SourceMaterializer {
  materialize(watch: WatchRef, commit: string, destDir: string, signal: AbortSignal): Promise<void>;
}

/** The parts of a watch the pipeline records and passes on. */
export interface WatchRef {
  readonly key: string;
  readonly repo: string;
}

export interface PipelineEvent {
  readonly watch: WatchRef;
  readonly branch: string;
  readonly commit: string;
  /** Commits that landed while the previous run was going and were coalesced into this one. */
  readonly skipped: readonly string[];
  /** More commits that were not built than `skipped` lists: recorded as one summary run. */
  readonly skippedOmitted?: { readonly count: number; readonly newest: string };
}

export interface PipelineOutcome {
  readonly ok: boolean;
  readonly runId?: RunId;
}
