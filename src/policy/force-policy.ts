import type { ChooseOptions, Policy, WatchMode } from './types.js';
import { newest, parseVersion } from './version.js';

/**
 * `force`: update whatever the new tag is, except that a version is never replaced by a lower
 * version (Keel's `internal/policy/force.go`, keel-hq/keel#823). With `matchTag` only the
 * current tag itself is followed, i.e. a new digest pushed under the same name.
 *
 * Choosing among several candidates (a tag list rather than one webhook tag), keelson orders
 * them like Keel's `ForcePolicy.Filter` (versions highest first, then other tags in the given
 * order) with two differences written up in KEEL-DIFFERENCES.md: a non-version current tag
 * stays on itself when it is offered, and a version current tag only moves to versions.
 */
export class ForcePolicy implements Policy {
  readonly kind = 'force';
  constructor(readonly text = 'force') {}

  choose(current: string, candidates: readonly string[], options: ChooseOptions = {}): string | undefined {
    const offered = candidates.includes(current);
    if (options.matchTag) return offered ? current : undefined;
    const from = parseVersion(current);
    if (from) {
      const versions = candidates.flatMap((tag) => parseVersion(tag) ?? []).filter((v) => v.semver.compare(from.semver) >= 0);
      // equal versions: the current spelling first, so a re-push of the same tag is "follow it"
      return newest(versions, (a, b) => a.semver.compare(b.semver), (v) => v.original === current)?.original;
    }
    if (offered) return current;
    const versions = candidates.flatMap((tag) => parseVersion(tag) ?? []);
    return newest(versions, (a, b) => a.semver.compare(b.semver))?.original ?? candidates[0];
  }

  watchMode(current: string, options: ChooseOptions = {}): WatchMode {
    return options.matchTag || !parseVersion(current) ? 'digest' : 'tags';
  }
}
