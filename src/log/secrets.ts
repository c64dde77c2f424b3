/**
 * A process-wide scrubber: a credential joins it the moment it is read (registry passwords,
 * tokens, webhook secrets), and every log line and run log passes through `redactSecrets`.
 */
const secrets = new Set<string>();
const REDACTED = '[REDACTED]';

/** Registers a value that must never be shown. Values shorter than 4 characters are ignored
 * because redacting them would mangle ordinary text. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) secrets.add(value);
}

export function redactSecrets(text: string): string {
  if (secrets.size === 0) return text;
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  // Credentials embedded in URLs (https://user:pass@host) are hidden even when not registered.
  return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^/\s@]+)@/gi, `$1$2:${REDACTED}@`);
}

/** Applies redactSecrets to every string inside a JSON-like value. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}
