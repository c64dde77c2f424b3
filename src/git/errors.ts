import { KeelsonError } from '../errors.js';

/** The remote could not be reached: DNS, connection refused, no such repository, a TLS error.
 * Retrying later may help; the watcher backs off. */
export class GitUnreachableError extends KeelsonError {
  readonly code = 'KEELSON_GIT_UNREACHABLE';
  readonly exitCode = 1;
  override readonly name = 'GitUnreachableError';

  constructor(readonly repo: string, detail: string, options?: { cause?: unknown }) {
    super(`${repo}: cannot reach the repository: ${detail}`, options);
  }
}

/** The remote answered but says there is no such repository (a mistyped URL or path). Bad
 * input for a one-shot command; the watcher still backs off and retries, as the repository may
 * be created later. */
export class GitRepositoryNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_GIT_REPOSITORY_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'GitRepositoryNotFoundError';

  constructor(readonly repo: string, detail: string, options?: { cause?: unknown }) {
    super(`${repo}: no such repository: ${detail}`, options);
  }
}

/** The remote refused our credentials, or needed some and we have none (we never prompt). */
export class GitAuthError extends KeelsonError {
  readonly code = 'KEELSON_GIT_AUTH';
  readonly exitCode = 1;
  override readonly name = 'GitAuthError';

  constructor(readonly repo: string, detail: string, options?: { cause?: unknown }) {
    super(`${repo}: authentication failed (${detail}); put credentials in the URL, a git ` +
      'credential helper or an ssh agent/key usable without a prompt', options);
  }
}

/** The named branch does not exist, or the default branch cannot be found. Bad input when the
 * user named it; the watcher keeps polling because the branch may be pushed later. */
export class GitBranchNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_GIT_BRANCH_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'GitBranchNotFoundError';

  constructor(readonly repo: string, readonly branch: string | undefined, detail?: string) {
    super(branch === undefined
      ? `${repo}: ${detail ?? 'has no default branch (empty repository?)'}; name one with REPO^BRANCH`
      : `${repo}: branch "${branch}" ${detail ?? 'does not exist'}`);
  }
}

/** A commit that was seen is no longer on its branch (force-pushed away) or not in the repo. */
export class GitCommitNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_GIT_COMMIT_NOT_FOUND';
  readonly exitCode = 1;
  override readonly name = 'GitCommitNotFoundError';

  constructor(readonly repo: string, readonly commit: string, detail: string) {
    super(`${repo}: commit ${commit} ${detail}`);
  }
}

/** Any other failure of a git command, with git's own last line (credentials removed). */
export class GitCommandError extends KeelsonError {
  readonly code = 'KEELSON_GIT_COMMAND';
  readonly exitCode = 1;
  override readonly name = 'GitCommandError';

  constructor(readonly command: string, readonly exitStatus: number | null, detail: string,
              options?: { cause?: unknown }) {
    super(`git ${command} failed${exitStatus === null ? '' : ` (exit ${exitStatus})`}: ${detail}`, options);
  }
}
