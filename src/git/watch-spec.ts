import { spawnSync } from 'node:child_process';
import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { registerSecret } from '../log/index.js';
import { gitEnv, gitMessage } from './run-git.js';
import type { WatchSpec } from './types.js';

/** Transports we hand to git. Others (`ext::`, `fd::`) can run commands and are refused. */
const SCHEMES = ['file:', 'git:', 'http:', 'https:', 'ssh:', 'git+ssh:', 'ssh+git:'];
const URL_PATTERN = /^[a-z][a-z0-9+.-]*:\/\//i;
/** git's scp-like syntax `[user@]host:path`: a colon before any slash (git `url.c`). */
const SCP_PATTERN = /^(?:([^@/:\s]+)@)?(\[[^\]]+\]|[^@/:\s]+):(.+)$/;
/** The word for "the repository's default branch" in a key. Git refuses `HEAD` as a branch
 * name, so the key cannot collide with a real branch. */
export const DEFAULT_BRANCH_KEY = 'HEAD';

export interface ParseWatchSpecOptions {
  /** Base for relative local paths. @default process.cwd() */
  readonly cwd?: string;
}

/**
 * Parses `REPO[^BRANCH]`: a remote URL (`https://`, `ssh://`, `git://`, `file://`, scp-like
 * `git@host:org/repo.git`) or a local path (`.`, `../x`, `/abs`). A local path must be the top
 * of a work tree or a bare repository. Credentials in a URL are registered as secrets and kept
 * out of `key` and `display`. Throws InputError (exit 2) naming the spec.
 */
export function parseWatchSpec(text: string, options: ParseWatchSpecOptions = {}): WatchSpec {
  const { repoText, branch } = splitBranch(text);
  if (repoText.length === 0) throw new InputError(text, 'no repository before "^"');
  if (repoText.startsWith('-')) throw new InputError(text, 'a repository cannot start with "-"');
  const suffix = `^${branch ?? DEFAULT_BRANCH_KEY}`;
  const shown = branch === undefined ? '' : `^${branch}`;

  if (/^[a-z][a-z0-9+.-]*::/i.test(repoText)) {
    // `transport::address` runs a remote helper program: not something a watch spec may do.
    throw new InputError(text, `unsupported transport "${repoText.split('::')[0]}" (expected https, http, ssh, git, file, or a local path)`);
  }
  if (URL_PATTERN.test(repoText)) {
    const repo = normaliseUrl(repoText, text);
    // `file:///x` and the path `/x` are one repository, so they share a key (and their history).
    const key = localPathOfFileUrl(repo) ?? repo;
    return { key: `${key}${suffix}`, repo: repoText, kind: 'remote', branch, display: `${repo}${shown}` };
  }
  if (!/^[./~]/.test(repoText)) {
    const scp = SCP_PATTERN.exec(repoText);
    if (scp) {
      const [, user, host, path] = scp;
      const repo = `${user ? `${user}@` : ''}${host!.toLowerCase()}:${path!.replace(/\/+$/, '')}`;
      return { key: `${repo}${suffix}`, repo: repoText, kind: 'remote', branch, display: `${repo}${shown}` };
    }
  }
  const repo = localRepository(repoText, resolve(options.cwd ?? process.cwd(), repoText));
  return { key: `${repo}${suffix}`, repo, kind: 'local', branch, display: `${repoText}${shown}` };
}

/** Splits at the last `^` (it cannot occur in a ref name) and checks the branch name. */
export function splitBranch(text: string): { repoText: string; branch?: string } {
  const at = text.lastIndexOf('^');
  if (at < 0) return { repoText: text.trim() };
  const repoText = text.slice(0, at).trim();
  let branch = text.slice(at + 1).trim().replace(/^refs\/heads\//, '');
  if (branch === DEFAULT_BRANCH_KEY) return { repoText };
  const problem = branchNameProblem(branch);
  if (problem) throw new InputError(text, `"${branch}" is not a valid branch name: ${problem}`);
  return { repoText, branch };
}

/** Why `name` is not a valid branch (the rules of git-check-ref-format), or undefined. */
export function branchNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'it contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'it contains ".."';
  if (name.includes('@{') || name === '@') return 'it contains "@{" or is "@"';
  if (name.startsWith('-')) return 'it starts with "-"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'it has an empty path component';
  if (name.endsWith('.')) return 'it ends with "."';
  if (name.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'))) {
    return 'a component starts with "." or ends with ".lock"';
  }
  return undefined;
}

/** `scheme://host/path` without credentials, host in lower case, no trailing slash. The
 * password (and a lone https user name, which is how tokens are usually passed) is a secret. */
function normaliseUrl(repoText: string, spec: string): string {
  let url: URL;
  try {
    url = new URL(repoText);
  } catch {
    throw new InputError(spec, 'not a valid URL');
  }
  const scheme = url.protocol.toLowerCase();
  if (!SCHEMES.includes(scheme)) {
    throw new InputError(spec, `unsupported scheme "${scheme.slice(0, -1)}" (expected https, http, ssh, git, file, or a local path)`);
  }
  const isHttp = scheme === 'http:' || scheme === 'https:';
  for (const value of [url.password, isHttp && !url.password ? url.username : '']) {
    if (!value) continue;
    registerSecret(value);
    registerSecret(safeDecode(value));
  }
  // An ssh user name (git@) says who to log in as; it is not a secret and distinguishes repos.
  const user = !isHttp && scheme !== 'file:' && url.username ? `${url.username}@` : '';
  const path = url.pathname.replace(/\/+$/, '');
  return `${scheme}//${user}${url.host.toLowerCase()}${path}${url.search}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The real path a `file://` URL names, when it is a directory on this machine. */
function localPathOfFileUrl(url: string): string | undefined {
  if (!url.startsWith('file://')) return undefined;
  try {
    const real = realpathSync(fileURLToPath(url));
    return statSync(real).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** The real path of a local repository: the top of a work tree, or a bare repository. */
function localRepository(repoText: string, absolute: string): string {
  let real: string;
  try {
    real = realpathSync(absolute);
    if (!statSync(real).isDirectory()) throw new InputError(repoText, 'not a directory');
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(repoText, 'no such directory');
  }
  // The ceiling stops git from searching parent directories: a folder inside some other
  // repository is not itself a repository to watch.
  const result = spawnSync('git', ['rev-parse', '--is-bare-repository', '--is-inside-work-tree', '--show-cdup'], {
    cwd: real,
    env: gitEnv({ GIT_CEILING_DIRECTORIES: dirname(real) }),
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.error) throw new InputError(repoText, `cannot run git: ${result.error.message}`);
  if (result.status !== 0) {
    const message = gitMessage(result.stderr);
    const reason = /not a git repository/i.test(message) ? '' : ` (${message})`;
    throw new InputError(repoText, `not a git repository${reason}`);
  }
  const [bare, inWorkTree, cdup] = result.stdout.split('\n').map((l) => l.trim());
  if (bare === 'true') return real;
  if (inWorkTree === 'true' && !cdup) return real;
  throw new InputError(repoText, 'not a git repository (give the top of the work tree or a bare repository)');
}

/** The repository part of `display`, for messages about the repository as a whole. */
export function repoDisplay(spec: WatchSpec): string {
  return spec.branch === undefined ? spec.display : spec.display.slice(0, -(spec.branch.length + 1));
}
