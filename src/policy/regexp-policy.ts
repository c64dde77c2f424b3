import { PatternPolicy } from './pattern-policy.js';

/**
 * `regexp:EXPR`: tags the expression matches (anywhere in the tag, as Go's MatchString), ordered
 * by the `compare` named group when the expression has one and by the whole tag otherwise.
 * Keel sorts those keys as strings and does not compare them with the current tag, so it can
 * pick `9` over `10` and even redeploy an older tag; keelson compares numbers as numbers,
 * versions as versions, and never goes below the current tag.
 */
export class RegexpPolicy extends PatternPolicy {
  readonly kind = 'regexp';

  /** `regexp` is the JavaScript translation of `expression` (see go-regexp.ts). */
  constructor(readonly expression: string, private readonly regexp: RegExp, readonly text = `regexp:${expression}`) {
    super();
  }

  protected sortKey(tag: string): string | undefined {
    const match = this.regexp.exec(tag);
    if (!match) return undefined;
    if (match.groups && 'compare' in match.groups) return match.groups.compare ?? '';
    return tag;
  }
}
