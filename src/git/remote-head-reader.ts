import { GitAuthError, GitBranchNotFoundError, GitCommandError, GitRepositoryNotFoundError, GitUnreachableError } from './errors.js';
import { gitMessage, runGit, stderrOf } from './run-git.js';
import { repoDisplay } from './watch-spec.js';
import type { Head, HeadReader, WatchSpec } from './types.js';

export interface RemoteHeadReaderOptions {
  /** Kill `git ls-remote` after this long. @default 60_000 ms */
  readonly timeoutMs?: number;
}

/** What `git ls-remote --symref` printed: symbolic refs (HEAD → refs/heads/main) and ref tips. */
export interface LsRemote {
  readonly symrefs: ReadonlyMap<string, string>;
  readonly refs: ReadonlyMap<string, string>;
}

export function parseLsRemote(stdout: string): LsRemote {
  const symrefs = new Map<string, string>();
  const refs = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [left, name] = line.split('\t');
    if (!left || !name) continue;
    if (left.startsWith('ref: ')) symrefs.set(name.trim(), left.slice(5).trim());
    else if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(left.trim())) refs.set(name.trim(), left.trim());
  }
  return { symrefs, refs };
}

/** git's words for "you are not allowed in" across http, ssh and the credential layer. */
const AUTH_FAILURE = /authentication failed|could not read (username|password)|terminal prompts disabled|permission denied \(|access denied|invalid username or password|invalid credentials|returned error: 40[13]|HTTP Basic/i;

/** git's words for "there is no repository there" (local paths, http 404, hosting services). */
const NO_SUCH_REPOSITORY = /does not appear to be a git repository|repository '[^']*' not found|repository not found|returned error: 404|no such repository/i;

/** Turns a failed remote git command into the typed error the caller acts on. */
export function remoteError(display: string, error: unknown): Error {
  if (!(error instanceof GitCommandError)) return error instanceof Error ? error : new Error(String(error));
  const stderr = stderrOf(error);
  const detail = gitMessage(stderr);
  if (AUTH_FAILURE.test(stderr)) return new GitAuthError(display, detail, { cause: error });
  if (NO_SUCH_REPOSITORY.test(stderr)) return new GitRepositoryNotFoundError(display, detail, { cause: error });
  return new GitUnreachableError(display, detail, { cause: error });
}

/**
 * Reads a remote branch tip with one `git ls-remote --symref`: no clone, no fetch. Without a
 * branch it follows the remote's HEAD symref, so the default branch is whatever the server
 * says (main, trunk, master), never assumed.
 */
export class RemoteHeadReader implements HeadReader {
  private readonly timeoutMs: number;

  constructor(private readonly spec: WatchSpec, options: RemoteHeadReaderOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  async readHead(signal?: AbortSignal): Promise<Head> {
    const { spec } = this;
    const pattern = spec.branch === undefined ? 'HEAD' : `refs/heads/${spec.branch}`;
    let stdout: string;
    try {
      ({ stdout } = await runGit(['ls-remote', '--symref', '--', spec.repo, pattern], { signal, timeoutMs: this.timeoutMs }));
    } catch (error) {
      throw remoteError(repoDisplay(spec), error);
    }
    const listing = parseLsRemote(stdout);
    if (spec.branch !== undefined) {
      const commit = listing.refs.get(pattern);
      if (!commit) throw new GitBranchNotFoundError(repoDisplay(spec), spec.branch);
      return { branch: spec.branch, commit };
    }
    const target = listing.symrefs.get('HEAD');
    const commit = listing.refs.get('HEAD');
    if (!commit) throw new GitBranchNotFoundError(repoDisplay(spec), undefined);
    if (!target?.startsWith('refs/heads/')) {
      // Old servers (dumb http) do not advertise the symref; guessing would be a hard-coded name.
      throw new GitBranchNotFoundError(repoDisplay(spec), undefined, 'does not say which branch is its default');
    }
    return { branch: target.slice('refs/heads/'.length), commit };
  }
}
