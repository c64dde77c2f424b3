import type { ChooseOptions, Policy, WatchMode } from './types.js';
import { newest, parseVersion, preReleaseKind, type TagVersion } from './version.js';

export type SemverPolicyKind = 'all' | 'major' | 'minor' | 'patch';

/**
 * `all`, `major`, `minor`, `patch`: the highest version above the current one within the
 * allowed range, as Keel's `internal/policy/semver.go`:
 * - `major` and `all` accept any higher version, `minor` the same major, `patch` the same
 *   major and minor.
 * - With matchPreRelease (the default) a candidate must have the same pre-release kind as the
 *   current tag; `all` never checks. Keel requires the identical pre-release string; keelson
 *   also lets numeric identifiers differ (`rc.1` -> `rc.2`), see KEEL-DIFFERENCES.md.
 * - A current tag that is not a version (`latest`) gets no tag update; a watcher follows its
 *   digest instead, as Keel's poller does for non-semver tags.
 */
export class SemverPolicy implements Policy {
  constructor(readonly kind: SemverPolicyKind, readonly text: string = kind) {}

  choose(current: string, candidates: readonly string[], options: ChooseOptions = {}): string | undefined {
    const from = parseVersion(current);
    if (!from) return undefined;
    const matchPreRelease = (options.matchPreRelease ?? true) && this.kind !== 'all';
    const fromKind = preReleaseKind(from);
    const acceptable: TagVersion[] = [];
    for (const tag of candidates) {
      const to = parseVersion(tag);
      if (!to || to.semver.compare(from.semver) <= 0) continue;
      if (matchPreRelease && preReleaseKind(to) !== fromKind) continue;
      if (this.kind === 'minor' && to.semver.major !== from.semver.major) continue;
      if (this.kind === 'patch' && (to.semver.major !== from.semver.major || to.semver.minor !== from.semver.minor)) continue;
      acceptable.push(to);
    }
    // `v1.3.0` and `1.3.0` are the same version; keep the spelling the workload already uses.
    return newest(acceptable, (a, b) => a.semver.compare(b.semver), (v) => v.prefixed === from.prefixed)?.original;
  }

  watchMode(current: string): WatchMode {
    return parseVersion(current) ? 'tags' : 'digest';
  }
}
