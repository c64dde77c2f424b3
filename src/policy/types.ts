/** The policy names keelson understands, the same as Keel's `keel.sh/policy` values. */
export type PolicyKind = 'all' | 'major' | 'minor' | 'patch' | 'force' | 'glob' | 'regexp' | 'never';

export interface ChooseOptions {
  /**
   * `keel.sh/matchTag` (force only): follow only the current tag name, i.e. a new digest pushed
   * under the same tag. @default false
   */
  readonly matchTag?: boolean;
  /**
   * `keel.sh/matchPreRelease` (major, minor, patch): a candidate must carry the same kind of
   * pre-release as the current tag (`1.2.3-alpine` only moves to `1.2.4-alpine`, a release
   * only to releases). `false` compares versions without looking at the pre-release, so
   * pre-releases are candidates like any other version. Ignored by `all`, as in Keel.
   * @default true
   */
  readonly matchPreRelease?: boolean;
}

/**
 * How a registry watcher has to observe a target under this policy:
 * `tags` lists the repository's tags and lets the policy choose, `digest` follows the digest of
 * the current tag (a re-push of the same tag), `none` never looks.
 */
export type WatchMode = 'tags' | 'digest' | 'none';

/** An update policy, parsed once from its text (`minor`, `glob:build-*`, `regexp:^v(?P<compare>\d+)$`). */
export interface Policy {
  readonly kind: PolicyKind;
  /** The text it was parsed from, as the user wrote it (trimmed). */
  readonly text: string;
  /**
   * The tag to move to from `current`, picked from `candidates` (a registry's tag list, or the
   * one tag a webhook announced); undefined when none is acceptable. Never older than
   * `current`. Returns `current` itself only for `force`, meaning "follow this tag's digest".
   * The candidate's own spelling is returned (`v1.2.0` stays `v1.2.0`).
   */
  choose(current: string, candidates: readonly string[], options?: ChooseOptions): string | undefined;
  /** How a watcher observes a target whose running tag is `current`. */
  watchMode(current: string, options?: ChooseOptions): WatchMode;
}
