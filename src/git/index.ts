/**
 * The git watcher: parses `REPO[^BRANCH]` watch specs, reads branch tips (ls-remote for remote
 * repositories, rev-parse for local ones), materialises the committed tree of a commit, and
 * polls watches on a schedule, triggering the pipeline for new commits with coalescing.
 */
export type { CommitHistory, CommitRange, GitCommandOptions, Head, HeadReader, PipelineTrigger, ResumePoint, TriggerEvent, WatchSpec } from './types.js';
export { parseWatchSpec, branchNameProblem, repoDisplay, DEFAULT_BRANCH_KEY, type ParseWatchSpecOptions } from './watch-spec.js';
export { RemoteHeadReader, parseLsRemote, type RemoteHeadReaderOptions, type LsRemote } from './remote-head-reader.js';
export { LocalHeadReader } from './local-head-reader.js';
export { materializeCommit, archiveCommit, mirrorName, gitCommitHistory, type SourceOptions, type MaterializedTree } from './materialize.js';
export { resolveInTree, readTreeFile, TreePathError, MAX_TREE_FILE_BYTES } from './tree-path.js';
export { parseSchedule, backoffMs, type Schedule } from './schedule.js';
export { GitWatcher, createHeadReader, watchStateKey, type GitWatcherOptions, type WatchStatus } from './watcher.js';
export { WatchState } from './schema.js';
export {
  GitAuthError, GitBranchNotFoundError, GitCommandError, GitCommitNotFoundError, GitRepositoryNotFoundError, GitUnreachableError,
} from './errors.js';
export { resolveWatch, adoptAliasState, watchKeysFor, repositoryKey, type ResolvedWatch } from './watch-identity.js';
