import type { DigestResolver } from './types.js';

/**
 * Resolves each `repository:tag` once for all the workloads one image change rolls: concurrent
 * asks share one registry request, and an answer is reused for `ttlMs` (ten workloads rolled to
 * 1.2.0 are one HEAD, not ten). A failed lookup is not kept. Short-lived on purpose: a tag can be
 * pushed again, and the next change must see its new digest.
 */
export class DigestMemo {
  private readonly entries = new Map<string, { readonly at: number; readonly digest: Promise<string | undefined> }>();

  constructor(private readonly resolve: DigestResolver, private readonly ttlMs = 5_000, private readonly now: () => number = Date.now) {}

  /** The tag's digest, or undefined when the registry does not answer (never rejects). */
  digest(repository: string, tag: string): Promise<string | undefined> {
    const now = this.now();
    for (const [key, entry] of this.entries) if (now - entry.at >= this.ttlMs) this.entries.delete(key);
    const key = `${repository}:${tag}`;
    const known = this.entries.get(key);
    if (known) return known.digest;
    const digest = this.resolve(repository, tag).then(
      (d) => d,
      () => {
        if (this.entries.get(key)?.digest === digest) this.entries.delete(key);
        return undefined;
      },
    );
    this.entries.set(key, { at: now, digest });
    return digest;
  }
}
