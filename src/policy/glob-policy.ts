import { PatternPolicy } from './pattern-policy.js';

/**
 * `glob:PATTERN`, where `*` matches any run of characters and every other character matches
 * itself (Keel uses github.com/ryanuber/go-glob, which has no `?` or `[...]`). Keel orders the
 * matches as plain strings, so it takes `1.9` over `1.10`; keelson orders them naturally.
 */
export class GlobPolicy extends PatternPolicy {
  readonly kind = 'glob';
  private readonly regexp: RegExp;

  constructor(readonly pattern: string, readonly text = `glob:${pattern}`) {
    super();
    const source = pattern.split('*').map((part) => part.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')).join('[\\s\\S]*');
    this.regexp = new RegExp(`^${source}$`);
  }

  protected sortKey(tag: string): string | undefined {
    return this.regexp.test(tag) ? tag : undefined;
  }
}
