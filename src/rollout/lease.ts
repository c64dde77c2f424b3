/**
 * A set of holders kept in one annotation ON the object they hold, so several processes agree on
 * it through the API server alone (resourceVersion-checked patches, retried on 409) and nothing
 * else has to be running. Used for the build hold on a workload and for the users of a dependency.
 *
 * Value: JSON object, holder id -> RFC 3339 expiry (null: until removed). A holder that died
 * without letting go expires; every write drops expired holders.
 */
export type LeaseSet = Readonly<Record<string, string | null>>;

/** The hold that `keelson ci` puts on its own workload while a build runs in it. */
export const HOLD_ANNOTATION = 'keelson.dev/hold';
/** Expiry of a hand-set hold (`keelson.dev/hold: <run id>`); JSON holds carry their own. */
export const HOLD_UNTIL_ANNOTATION = 'keelson.dev/hold-until';

/**
 * Reads a lease annotation. Besides the JSON form, a plain value is one holder (that is how a
 * person holds a workload by hand: `keelson.dev/hold: my-debugging`), expiring at `until` when
 * given (an unparsable `until` never expires: holding too long is safer than rolling a build).
 */
export function parseLeaseSet(value: string | undefined, until?: string): LeaseSet {
  if (value === undefined || value.trim() === '') return {};
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const out: Record<string, string | null> = {};
        for (const [id, expiry] of Object.entries(parsed)) out[id] = typeof expiry === 'string' ? expiry : null;
        return out;
      }
    } catch {
      // not JSON after all: a plain holder id that happens to start with "{"
    }
  }
  const expiry = until !== undefined && !Number.isNaN(Date.parse(until)) ? new Date(until).toISOString() : null;
  return { [trimmed]: expiry };
}

function isLive(expiry: string | null, now: Date): boolean {
  if (expiry === null) return true;
  const at = Date.parse(expiry);
  return Number.isNaN(at) || at > now.getTime();
}

/** Holder ids whose lease has not expired, sorted. */
export function liveHolders(set: LeaseSet, now: Date): string[] {
  return Object.entries(set).filter(([, expiry]) => isLive(expiry, now)).map(([id]) => id).sort();
}

/** The earliest future expiry among live holders (when to look again), if any expires. */
export function nextExpiry(set: LeaseSet, now: Date): Date | undefined {
  let earliest: number | undefined;
  for (const [, expiry] of Object.entries(set)) {
    if (expiry === null || !isLive(expiry, now)) continue;
    const at = Date.parse(expiry);
    if (earliest === undefined || at < earliest) earliest = at;
  }
  return earliest === undefined ? undefined : new Date(earliest);
}

/** Adds or renews `id` until `until`, dropping expired holders. */
export function withHolder(set: LeaseSet, id: string, until: Date, now: Date): LeaseSet {
  const out: Record<string, string | null> = {};
  for (const holder of liveHolders(set, now)) out[holder] = set[holder] ?? null;
  out[id] = until.toISOString();
  return out;
}

/** Removes `id`, dropping expired holders. */
export function withoutHolder(set: LeaseSet, id: string, now: Date): LeaseSet {
  const out: Record<string, string | null> = {};
  for (const holder of liveHolders(set, now)) if (holder !== id) out[holder] = set[holder] ?? null;
  return out;
}

/** The annotation value to write: null (remove the annotation) when nobody holds. */
export function formatLeaseSet(set: LeaseSet): string | null {
  const ids = Object.keys(set).sort();
  if (ids.length === 0) return null;
  return JSON.stringify(Object.fromEntries(ids.map((id) => [id, set[id] ?? null])));
}

export interface HoldState {
  readonly held: boolean;
  readonly holders: readonly string[];
  /** When the hold may end on its own (an expiry), so the controller knows when to look again */
  readonly recheckAt?: Date;
}

/** Whether a workload's annotations hold its rollouts right now. */
export function readHold(annotations: Readonly<Record<string, string>> | undefined, now: Date): HoldState {
  const set = parseLeaseSet(annotations?.[HOLD_ANNOTATION], annotations?.[HOLD_UNTIL_ANNOTATION]);
  const holders = liveHolders(set, now);
  const recheckAt = nextExpiry(set, now);
  return { held: holders.length > 0, holders, ...(recheckAt ? { recheckAt } : {}) };
}
