/**
 * Real git repositories in temp dirs for tests: bare and non-bare, commits made with an
 * identity set per repository (never the user's global config), cleaned up by cleanupRepos().
 */
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const made = new Set<string>();

/** Runs git in `dir` and returns its trimmed stdout. */
export async function git(dir: string, ...args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
  for (const name of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE']) delete env[name];
  const { stdout } = await run('git', ['-C', dir, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** A fresh temp dir, removed by cleanupRepos(). */
export async function tempDir(prefix = 'keelson-git-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export interface MakeRepoOptions {
  readonly bare?: boolean;
  /** The initial branch (HEAD). @default 'main' */
  readonly branch?: string;
}

/** `git init` with an identity of its own. Returns the repository's directory. */
export async function makeRepo(options: MakeRepoOptions = {}): Promise<string> {
  const parent = await tempDir('keelson-repo-');
  const dir = join(parent, options.bare ? 'repo.git' : 'repo');
  await mkdir(dir);
  await git(dir, 'init', '--quiet', `--initial-branch=${options.branch ?? 'main'}`, ...(options.bare ? ['--bare'] : []));
  await configureIdentity(dir);
  return dir;
}

async function configureIdentity(dir: string): Promise<void> {
  await git(dir, 'config', 'user.name', 'Keelson Test');
  await git(dir, 'config', 'user.email', 'test@keelson.invalid');
  await git(dir, 'config', 'commit.gpgsign', 'false');
}

async function isBare(dir: string): Promise<boolean> {
  return (await git(dir, 'rev-parse', '--is-bare-repository')) === 'true';
}

export interface CommitOptions {
  /** The branch to commit to. @default the checked-out branch (HEAD) */
  readonly branch?: string;
}

/**
 * Commits one file and returns the new commit's sha. In a work tree it writes the file and runs
 * `git add` + `git commit` on the checked-out branch; in a bare repository it builds the commit
 * with plumbing on `branch` (or HEAD's branch), so tests need not clone to push.
 */
export async function commitFile(repoDir: string, path: string, content: string, message = `update ${path}`,
                                 options: CommitOptions = {}): Promise<string> {
  if (!(await isBare(repoDir))) {
    if (options.branch) await git(repoDir, 'checkout', '--quiet', '-B', options.branch);
    const file = join(repoDir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
    await git(repoDir, 'add', '--', path);
    await git(repoDir, 'commit', '--quiet', '-m', message);
    return git(repoDir, 'rev-parse', 'HEAD');
  }
  const ref = options.branch ? `refs/heads/${options.branch}` : await git(repoDir, 'symbolic-ref', 'HEAD');
  const parent = await git(repoDir, 'rev-parse', '--verify', '--quiet', ref).catch(() => '');
  const index = join(await tempDir('keelson-index-'), 'index');
  const withIndex = async (...args: string[]) => {
    const { stdout } = await run('git', ['-C', repoDir, ...args], { env: { ...process.env, GIT_INDEX_FILE: index } });
    return stdout.trim();
  };
  if (parent) await withIndex('read-tree', parent);
  const blob = await hashObject(repoDir, content);
  await withIndex('update-index', '--add', '--cacheinfo', `100644,${blob},${path}`);
  const tree = await withIndex('write-tree');
  const commit = await git(repoDir, 'commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message);
  await git(repoDir, 'update-ref', ref, commit);
  return commit;
}

async function hashObject(repoDir: string, content: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['-C', repoDir, 'hash-object', '-w', '--stdin'], (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout.trim());
    });
    child.stdin?.end(content);
  });
}

/** A non-bare clone of `source` (a path or URL) with its own identity; `origin` is the source. */
export async function cloneRepo(source: string): Promise<string> {
  const dir = join(await tempDir('keelson-clone-'), 'clone');
  await git(dirname(dir), 'clone', '--quiet', source, dir);
  await configureIdentity(dir);
  return dir;
}

/** A bare clone of `source`. */
export async function cloneBare(source: string): Promise<string> {
  const dir = join(await tempDir('keelson-bare-'), 'repo.git');
  await git(dirname(dir), 'clone', '--quiet', '--bare', source, dir);
  await configureIdentity(dir);
  return dir;
}

export interface PushOptions {
  /** @default 'origin' */
  readonly remote?: string;
  /** @default the checked-out branch */
  readonly branch?: string;
  readonly force?: boolean;
}

export async function push(repoDir: string, options: PushOptions = {}): Promise<void> {
  const branch = options.branch ?? (await git(repoDir, 'symbolic-ref', '--short', 'HEAD'));
  await git(repoDir, 'push', '--quiet', ...(options.force ? ['--force'] : []), options.remote ?? 'origin', `refs/heads/${branch}:refs/heads/${branch}`);
}

/** Points a (bare) repository's HEAD at `branch`: the default branch clients see. */
export async function setDefaultBranch(repoDir: string, branch: string): Promise<void> {
  await git(repoDir, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`);
}

export function fileUrl(dir: string): string {
  return pathToFileURL(dir).href;
}

/** Removes every directory made by this module. */
export async function cleanupRepos(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>`; repositories are `${url}/<path under root>` */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * The real git smart-HTTP server (`git http-backend`, run as CGI per request) on a free
 * loopback port, serving the repositories under `root`, behind HTTP basic auth when `user` is
 * given: for tests of credentials in URLs and of authentication failures.
 */
export async function startGitHttpServer(options: { root: string; user?: string; password?: string }): Promise<GitHttpServer> {
  const expected = options.user ? `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')}` : undefined;
  const server = createServer((req, res) => {
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: options.user ?? '',
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    const out: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('close', () => {
      const all = Buffer.concat(out);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split < 0 ? 0 : split).toString('latin1');
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.split('\r\n').filter(Boolean)) {
        const at = line.indexOf(':');
        const name = line.slice(0, at).trim();
        const value = line.slice(at + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers).end(all.subarray(split < 0 ? 0 : split + 4));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
