import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { dnsLabel } from '../domain/index.js';
import { InputError } from '../errors.js';
import { GitBranchNotFoundError, GitCommitNotFoundError } from './errors.js';
import { remoteError } from './remote-head-reader.js';
import { DEFAULT_GIT_TIMEOUT_MS, gitMessage, runGit, spawnGit, stderrOf } from './run-git.js';
import type { CommitHistory, WatchSpec } from './types.js';
import { repoDisplay } from './watch-spec.js';

export interface SourceOptions {
  /** Where bare mirrors of remote repositories are kept between runs (one per repository,
   * created on first use). Not used for local repositories. */
  readonly cacheDir: string;
  /** The branch the commit was seen on (`TriggerEvent.branch`). The commit must be on it.
   * @default spec.branch, else the repository's default branch (HEAD) */
  readonly branch?: string;
  readonly signal?: AbortSignal;
  /** Per git command. @default DEFAULT_GIT_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

export interface MaterializedTree {
  readonly dir: string;
  readonly commit: string;
  /** Paths of submodules in the commit. They are left as empty directories: a submodule is
   * another repository at another commit, and fetching it is not done here. */
  readonly submodules: readonly string[];
}

/**
 * Writes exactly the committed tree of `commit` into `destDir` (created; must be empty): never
 * the work tree, so modified and untracked files of a local checkout do not leak into a build.
 * A remote repository is fetched into a bare mirror under `cacheDir` first (only here, when
 * building; polls never fetch). Throws GitCommitNotFoundError when the commit is no longer on
 * its branch, e.g. after a force-push.
 */
export async function materializeCommit(spec: WatchSpec, commit: string, destDir: string,
                                        options: SourceOptions): Promise<MaterializedTree> {
  const gitDir = await prepareCommit(spec, commit, options);
  await mkdir(destDir, { recursive: true });
  if ((await readdir(destDir)).length > 0) throw new InputError(destDir, 'must be empty to receive a source tree');
  // A throwaway index: the repository's own index (and so the user's staged changes) is never
  // read or written.
  const indexDir = await mkdtemp(join(tmpdir(), 'keelson-index-'));
  try {
    const env = { GIT_INDEX_FILE: join(indexDir, 'index') };
    const run = (args: string[]) => runGit(['-C', gitDir, '-c', 'core.autocrlf=false', `--work-tree=${destDir}`, ...args],
      { env, signal: options.signal, timeoutMs: options.timeoutMs });
    await run(['read-tree', '--end-of-options', commit]);
    await run(['checkout-index', '--all', '--force']);
    const listing = await run(['ls-files', '--stage', '-z']);
    const submodules = listing.stdout.split('\0').filter((l) => l.startsWith('160000 ')).map((l) => l.split('\t')[1] ?? '');
    return { dir: destDir, commit, submodules };
  } finally {
    await rm(indexDir, { recursive: true, force: true });
  }
}

/**
 * The committed tree of `commit` as a tar stream (`git archive`), for executors that copy
 * source over a pipe. Note: `export-ignore`/`export-subst` attributes apply, as with any
 * `git archive`; use materializeCommit for the tree byte for byte.
 */
export async function archiveCommit(spec: WatchSpec, commit: string, options: SourceOptions): Promise<Readable> {
  const gitDir = await prepareCommit(spec, commit, options);
  const child = spawnGit(['-C', gitDir, 'archive', '--format=tar', '--end-of-options', commit],
    { signal: options.signal, timeoutMs: options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS });
  const out = new PassThrough();
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdout.pipe(out, { end: false });
  child.on('error', (error) => out.destroy(error));
  child.on('close', (status) => {
    if (status === 0) out.end();
    else out.destroy(new Error(`git archive ${commit} failed: ${gitMessage(Buffer.concat(stderr).toString('utf8'))}`));
  });
  return out;
}

/** Makes sure the commit is present and on its branch; returns the git dir to read it from. */
async function prepareCommit(spec: WatchSpec, commit: string, options: SourceOptions): Promise<string> {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) throw new InputError(repoDisplay(spec), `"${commit}" is not a full commit id`);
  const branch = options.branch ?? spec.branch;
  let gitDir = spec.repo;
  let ref = branch === undefined ? 'HEAD' : `refs/heads/${branch}`;
  if (spec.kind === 'remote') {
    ({ gitDir, ref } = await fetchIntoMirror(spec, branch, options));
  }
  const git = (args: string[]) => runGit(['-C', gitDir, ...args], { signal: options.signal, timeoutMs: options.timeoutMs, okStatuses: [0, 1, 128] });
  const present = await git(['cat-file', '-e', '--end-of-options', `${commit}^{commit}`]);
  if (present.status !== 0) {
    throw new GitCommitNotFoundError(repoDisplay(spec), commit, 'is not in the repository (force-pushed away before it was built?)');
  }
  const onBranch = await git(['merge-base', '--is-ancestor', '--end-of-options', commit, ref]);
  if (onBranch.status === 1) {
    throw new GitCommitNotFoundError(repoDisplay(spec), commit, `is no longer on ${branch === undefined ? 'the default branch' : `branch "${branch}"`} (force-pushed away?)`);
  }
  if (onBranch.status !== 0) {
    throw new GitBranchNotFoundError(repoDisplay(spec), branch, gitMessage(onBranch.stderr));
  }
  return gitDir;
}

/**
 * The commits between the last one done and a new head, read from the repository (a remote one
 * through its mirror under `cacheDir`, fetched now). When `from` is not an ancestor (a
 * force-push) only what `to` has that `from` has not is listed; when `from` is unknown
 * altogether, nothing is (there is no way to tell what was skipped).
 */
export function gitCommitHistory(options: Pick<SourceOptions, 'cacheDir' | 'timeoutMs'>): CommitHistory {
  return {
    async between(spec, from, to, limit, signal) {
      let gitDir = spec.repo;
      if (spec.kind === 'remote') ({ gitDir } = await fetchIntoMirror(spec, spec.branch, { ...options, ...(signal ? { signal } : {}) }));
      const git = (args: string[]) => runGit(['-C', gitDir, ...args], { signal, timeoutMs: options.timeoutMs, okStatuses: [0, 128] });
      const known = await git(['cat-file', '-e', '--end-of-options', `${from}^{commit}`]);
      if (known.status !== 0) return { commits: [], omitted: 0 };
      const listed = await git(['rev-list', `--max-count=${limit + 2}`, '--end-of-options', to, `^${from}`]);
      if (listed.status !== 0) return { commits: [], omitted: 0 };
      const newestFirst = listed.stdout.split('\n').filter((line) => line !== '' && line !== to);
      if (newestFirst.length <= limit) return { commits: newestFirst.reverse(), omitted: 0 };
      const count = await git(['rev-list', '--count', '--end-of-options', to, `^${from}`]);
      const total = Number(count.stdout.trim()) - 1;
      return { commits: newestFirst.slice(0, limit).reverse(), omitted: total - limit, newestOmitted: newestFirst[limit]! };
    },
  };
}

/** One fetch at a time per mirror in this process: git refuses concurrent ref updates. */
const mirrorLocks = new Map<string, Promise<unknown>>();

async function fetchIntoMirror(spec: WatchSpec, branch: string | undefined, options: SourceOptions): Promise<{ gitDir: string; ref: string }> {
  const gitDir = join(options.cacheDir, mirrorName(spec));
  const previous = mirrorLocks.get(gitDir) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(async () => {
    if (!existsSync(join(gitDir, 'HEAD'))) await createMirror(gitDir, options);
    const source = branch === undefined ? 'HEAD' : `refs/heads/${branch}`;
    const ref = branch === undefined ? 'refs/keelson/HEAD' : `refs/heads/${branch}`;
    try {
      // The URL is passed on each fetch rather than stored as a remote, so that credentials
      // in it never land in the mirror's config file.
      await runGit(['-C', gitDir, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', spec.repo, `+${source}:${ref}`],
        { signal: options.signal, timeoutMs: options.timeoutMs });
    } catch (error) {
      if (/couldn't find remote ref/i.test(stderrOf(error))) throw new GitBranchNotFoundError(repoDisplay(spec), branch);
      throw remoteError(repoDisplay(spec), error);
    }
    return { gitDir, ref };
  });
  mirrorLocks.set(gitDir, current);
  try {
    return await current;
  } finally {
    if (mirrorLocks.get(gitDir) === current) mirrorLocks.delete(gitDir);
  }
}

/** Created aside and renamed into place, so that a half-made mirror is never used. */
async function createMirror(gitDir: string, options: SourceOptions): Promise<void> {
  await mkdir(options.cacheDir, { recursive: true });
  const temporary = `${gitDir}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await runGit(['init', '--quiet', '--bare', temporary], { signal: options.signal, timeoutMs: options.timeoutMs });
    await rename(temporary, gitDir);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    if (!existsSync(join(gitDir, 'HEAD'))) throw error; // else another process made it first
  }
}

/** `github-com-org-repo-git-1a2b3c4d`: readable, and the hash keeps similar names apart. */
export function mirrorName(spec: WatchSpec): string {
  const repo = spec.key.slice(0, spec.key.lastIndexOf('^'));
  const hash = createHash('sha256').update(repo).digest('hex').slice(0, 8);
  return `${dnsLabel(repo.replace(/^[a-z+]+:\/\//, ''), 40)}-${hash}.git`;
}
