export interface RecentSetOptions {
  /** Most keys kept; the oldest go first. */
  readonly capacity: number;
  /** How long a key is remembered. */
  readonly ttlMs: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Keys seen lately, bounded in count and in age: memory stays flat however many distinct keys a
 * sender invents. A Map iterates in insertion order, so its first entry is always the oldest.
 */
export class RecentSet {
  private readonly seenAt = new Map<string, number>();
  private readonly capacity: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: RecentSetOptions) {
    if (!(options.capacity >= 1) || !(options.ttlMs > 0)) throw new RangeError('RecentSet needs a capacity >= 1 and a ttlMs > 0');
    this.capacity = options.capacity;
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
  }

  /** True when `key` was added within the last ttlMs. */
  has(key: string): boolean {
    this.expire();
    return this.seenAt.has(key);
  }

  /** Remembers `key` from now on (a key added again counts from now). */
  add(key: string): void {
    this.expire();
    this.seenAt.delete(key);
    this.seenAt.set(key, this.now());
    if (this.seenAt.size > this.capacity) this.seenAt.delete(this.seenAt.keys().next().value!);
  }

  get size(): number {
    this.expire();
    return this.seenAt.size;
  }

  private expire(): void {
    const oldest = this.now() - this.ttlMs;
    for (const [key, at] of this.seenAt) {
      if (at > oldest) break;
      this.seenAt.delete(key);
    }
  }
}
