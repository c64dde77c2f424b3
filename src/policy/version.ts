import { SemVer } from 'semver';

/** A tag read as a semantic version, keeping the spelling it came in. */
export interface TagVersion {
  readonly original: string;
  readonly semver: SemVer;
  /** Written with a leading `v` */
  readonly prefixed: boolean;
}

// Keel parses tags with Masterminds/semver v1: an optional `v`, MAJOR.MINOR with an optional
// PATCH (`1.2` is 1.2.0), pre-release and build. Keel also drops tags without a dot (`3050`), so
// a bare number is not a version here either.
const LENIENT_SEMVER = /^(v?)(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/** Reads a tag as a version, or undefined when it is not one (`latest`, `main`, `3050`, `1.2.3.4`). */
export function parseVersion(tag: string): TagVersion | undefined {
  const m = LENIENT_SEMVER.exec(tag);
  if (!m) return undefined;
  const [, v, major, minor, patch, pre, build] = m;
  const text = `${BigInt(major!)}.${BigInt(minor!)}.${BigInt(patch ?? '0')}${pre ? `-${pre}` : ''}${build ? `+${build}` : ''}`;
  try {
    // loose: Masterminds accepts leading zeros in numeric pre-release identifiers (`rc.01`)
    return { original: tag, semver: new SemVer(text, { loose: true }), prefixed: v === 'v' };
  } catch {
    return undefined; // e.g. a number beyond Number.MAX_SAFE_INTEGER
  }
}

/**
 * The "kind" of a version's pre-release: its identifiers with every numeric one replaced by
 * `#`, so `rc.1` and `rc.2` are the same kind, `alpine` and `alpine` too, `rc.1` and `beta.1`
 * are not, and a release has kind ''.
 */
export function preReleaseKind(version: TagVersion): string {
  return version.semver.prerelease.map((id) => (typeof id === 'number' ? '#' : id)).join('.');
}

/**
 * Natural order: runs of digits compare as numbers, everything else by code unit, so `1.10`
 * sorts after `1.9` and `build-10` after `build-9`.
 */
export function naturalCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits && yDigits) {
      const byValue = compareDigitRuns(x, y);
      if (byValue !== 0) return byValue;
      return x.length - y.length; // same value, fewer leading zeros first
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

function compareDigitRuns(x: string, y: string): number {
  const xs = x.replace(/^0+(?=\d)/, '');
  const ys = y.replace(/^0+(?=\d)/, '');
  if (xs.length !== ys.length) return xs.length - ys.length;
  return xs < ys ? -1 : xs > ys ? 1 : 0;
}

/**
 * Orders two tags (or two `compare` group values): as whole numbers when both are numbers, as
 * semantic versions when both are versions, otherwise naturally.
 */
export function compareTags(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return compareDigitRuns(a, b);
  const va = parseVersion(a);
  const vb = parseVersion(b);
  if (va && vb) return va.semver.compare(vb.semver);
  return naturalCompare(a, b);
}

/**
 * The best of `candidates` by `compare`, first one winning ties; `prefer` breaks ties before
 * list order (e.g. the spelling that matches the current tag's).
 */
export function newest<T>(candidates: Iterable<T>, compare: (a: T, b: T) => number, prefer?: (a: T) => boolean): T | undefined {
  let best: T | undefined;
  for (const candidate of candidates) {
    if (best === undefined) {
      best = candidate;
      continue;
    }
    const order = compare(candidate, best);
    if (order > 0 || (order === 0 && prefer !== undefined && prefer(candidate) && !prefer(best))) best = candidate;
  }
  return best;
}
