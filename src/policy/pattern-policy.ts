import type { Policy, WatchMode } from './types.js';
import { compareTags, newest, parseVersion } from './version.js';

/**
 * What `glob:` and `regexp:` share: a candidate must match the pattern and be newer than the
 * current tag, compared by its sort key (the whole tag, or a regexp's `compare` group) as a
 * number, a version or naturally (`1.10` after `1.9`). When the current tag does not match the
 * pattern there is nothing to compare it with, so the newest matching candidate is chosen:
 * the pattern says which tags the workload should run.
 */
export abstract class PatternPolicy implements Policy {
  abstract readonly kind: 'glob' | 'regexp';
  abstract readonly text: string;

  /** The candidate's sort key, or undefined when it does not match. */
  protected abstract sortKey(tag: string): string | undefined;

  choose(current: string, candidates: readonly string[]): string | undefined {
    const currentKey = this.sortKey(current);
    const matching: { tag: string; key: string }[] = [];
    for (const tag of candidates) {
      const key = this.sortKey(tag);
      if (key === undefined) continue;
      if (currentKey !== undefined && compareTags(key, currentKey) <= 0) continue;
      matching.push({ tag, key });
    }
    const prefixed = parseVersion(current)?.prefixed;
    return newest(matching, (a, b) => compareTags(a.key, b.key) || compareTags(a.tag, b.tag),
      (m) => parseVersion(m.tag)?.prefixed === prefixed)?.tag;
  }

  watchMode(): WatchMode {
    return 'tags';
  }
}
