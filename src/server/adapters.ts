/**
 * The server's sources made from the parts the daemon already runs, so that wiring is one line
 * each. Only types are imported from those parts: `keelson watch --ui` must not load the
 * Kubernetes client just to show its watches.
 */
import type { GitWatcher } from '../git/index.js';
import type { RegistryWatcher } from '../registry-watch/index.js';
import type { Approval, ApprovalBook } from '../rollout/index.js';
import type { ApprovalSource, GitPushEvent, GitPushSink, RegistrySource, WatchSource } from './types.js';

/** The git watcher as the page's watches, `POST /api/watches/check`, and the GitHub push target. */
export function gitWatcherSources(watcher: Pick<GitWatcher, 'status' | 'pollOnce'>): { watches: WatchSource; gitPush: GitPushSink } {
  return {
    watches: { watches: () => watcher.status(), checkNow: (key) => watcher.pollOnce(key) },
    gitPush: { push: (event) => Promise.all(watchesForPush(watcher.status().map((w) => w.key), event).map((key) => watcher.pollOnce(key))) },
  };
}

/**
 * The watch keys a push concerns: same repository (whatever URL form the watch and GitHub use) and
 * the pushed branch, or the default branch (`^HEAD`, which a poll resolves, so polling is cheap
 * and right when the push was to the default branch).
 */
export function watchesForPush(keys: readonly string[], event: GitPushEvent): string[] {
  const pushed = new Set(event.repoUrls.map(repositoryIdentity));
  return keys.filter((key) => {
    const caret = key.lastIndexOf('^');
    const branch = key.slice(caret + 1);
    return pushed.has(repositoryIdentity(key.slice(0, caret))) && (branch === event.branch || branch === 'HEAD');
  });
}

/**
 * `host/path` of a git URL, for comparing: scheme, user, `.git` and trailing slashes dropped, host
 * in lower case. `https://github.com/o/r.git`, `git@github.com:o/r.git` and `ssh://git@github.com/o/r`
 * are all `github.com/o/r`; a local path and its `file://` URL are both `/the/path` (watch keys
 * name a local repository by its path).
 */
export function repositoryIdentity(url: string): string {
  const scp = /^(?:[^@/:]+@)?([^/:]+):(?!\/\/)(.+)$/.exec(url);
  let host: string;
  let path: string;
  if (url.startsWith('/')) {
    host = '';
    path = url;
  } else if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    host = scp[1]!;
    path = scp[2]!;
  } else {
    try {
      const parsed = new URL(url);
      host = parsed.host;
      path = parsed.protocol === 'file:' ? decodeFilePath(parsed.pathname) : parsed.pathname;
    } catch {
      return url;
    }
  }
  return `${host.toLowerCase()}/${path.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '')}`;
}

function decodeFilePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** The registry watcher as the page's registry checks and the target of registry webhooks. */
export function registryWatcherSource(watcher: Pick<RegistryWatcher, 'status' | 'checkNow'>): RegistrySource {
  return { jobs: () => watcher.status(), checkNow: (repository) => watcher.checkNow(repository) };
}

/**
 * The rollout controller's approvals. Pending means what src/rollout's approvalStatus calls
 * pending: not rejected, short of votes, before the deadline.
 */
export function approvalBookSource(book: Pick<ApprovalBook, 'list' | 'approve' | 'reject'>, now: () => Date = () => new Date()): ApprovalSource {
  const isPending = (a: Approval, at: Date): boolean => !a.rejected && a.voters.length < a.votesRequired && Date.parse(a.deadline) > at.getTime();
  return {
    pending: async () => {
      const at = now();
      return (await book.list()).filter((a) => isPending(a, at));
    },
    approve: (id, by) => book.approve(id, by, now()),
    reject: (id, by) => book.reject(id, by, now()),
  };
}
