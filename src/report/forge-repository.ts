/** A repository on a forge (GitHub, GitLab), derived from the URL keelson watches. */
export interface ForgeRepository {
  /** host[:port] as written in the URL, lower-cased */
  readonly host: string;
  /** `owner/name` on GitHub, `group/subgroup/name` on GitLab; without `.git` */
  readonly path: string;
}

// git's scp-like syntax: [user@]host:path, where the part before the colon has no slash.
const SCP = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/;

/**
 * The host and project path of a remote git URL: `https://github.com/org/app.git`,
 * `ssh://git@gitlab.example.com:2222/group/sub/app.git`, `git@github.com:org/app.git`.
 * Returns undefined for local paths and `file://` URLs: they have no forge to report to.
 */
export function parseForgeRepository(url: string): ForgeRepository | undefined {
  const text = url.trim();
  let host: string;
  let path: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return undefined;
    }
    if (!['https:', 'http:', 'ssh:', 'git:'].includes(parsed.protocol) || !parsed.hostname) return undefined;
    host = parsed.host;
    path = decodeURIComponent(parsed.pathname);
  } else {
    const scp = SCP.exec(text);
    // `C:\repo` and `./repo:x` are paths, not hosts
    if (!scp || scp[1]!.length === 1 || text.startsWith('.') || text.startsWith('/')) return undefined;
    host = scp[1]!;
    path = scp[2]!;
  }
  path = path.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
  const parts = path.split('/').filter(Boolean);
  if (parts.length < 2 || parts.some((part) => part === '.' || part === '..')) return undefined;
  return { host: host.toLowerCase(), path: parts.join('/') };
}

/** `owner/name`, checked, for GitHub (which has no nested groups). */
export function githubOwnerRepo(path: string): { owner: string; repo: string } | undefined {
  const match = /^([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+)$/.exec(path);
  return match ? { owner: match[1]!, repo: match[2]! } : undefined;
}
