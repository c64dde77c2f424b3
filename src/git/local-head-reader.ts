import { GitBranchNotFoundError, GitUnreachableError } from './errors.js';
import { gitMessage, runGit, stderrOf } from './run-git.js';
import { repoDisplay } from './watch-spec.js';
import type { Head, HeadReader, WatchSpec } from './types.js';

/**
 * Reads a branch tip of a repository on this machine with `git rev-parse`: commits that were
 * never pushed are seen. Without a branch it follows the repository's HEAD (the checked-out
 * branch of a work tree, the default branch of a bare repository).
 */
export class LocalHeadReader implements HeadReader {
  constructor(private readonly spec: WatchSpec) {}

  async readHead(signal?: AbortSignal): Promise<Head> {
    const branch = this.spec.branch ?? (await this.defaultBranch(signal));
    const result = await this.git(['rev-parse', '--verify', '--quiet', '--end-of-options', `refs/heads/${branch}^{commit}`], signal);
    const commit = result.stdout.trim();
    if (result.status !== 0 || !commit) {
      throw new GitBranchNotFoundError(repoDisplay(this.spec), branch, this.spec.branch === undefined ? 'has no commits yet' : undefined);
    }
    return { branch, commit };
  }

  private async defaultBranch(signal?: AbortSignal): Promise<string> {
    const result = await this.git(['symbolic-ref', '--quiet', 'HEAD'], signal);
    const ref = result.stdout.trim();
    if (result.status !== 0 || !ref.startsWith('refs/heads/')) {
      throw new GitBranchNotFoundError(repoDisplay(this.spec), undefined, 'HEAD is detached, so there is no branch to follow');
    }
    return ref.slice('refs/heads/'.length);
  }

  /** Exit 1 is an answer ("no such ref"); anything else means the repository is gone. */
  private async git(args: string[], signal?: AbortSignal) {
    try {
      return await runGit(['-C', this.spec.repo, ...args], { signal, okStatuses: [0, 1], timeoutMs: 30_000 });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new GitUnreachableError(repoDisplay(this.spec), gitMessage(stderrOf(error)), { cause: error });
    }
  }
}
