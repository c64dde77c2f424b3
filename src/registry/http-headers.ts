/** Parsers for the headers the distribution API speaks in. Pure, so they are unit-tested. */

export interface AuthChallenge {
  /** lowercase: `basic`, `bearer`, or whatever else a server sends */
  readonly scheme: string;
  /** parameter names lowercased: realm, service, scope, error */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses `WWW-Authenticate` (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `name=value` or `name="quoted value"` parameters. Several header lines (an
 * array) are read in order. Unparseable trailing text is ignored: a server's quirk must not stop
 * us from using the challenges we did understand.
 */
export function parseAuthChallenges(header: string | readonly string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((line) => parseAuthChallenges(line));
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const skip = (pattern: RegExp) => { while (i < header.length && pattern.test(header[i]!)) i++; };
  const token = (): string => {
    const start = i;
    skip(/[!#$%&'*+\-.^_`|~0-9A-Za-z]/);
    return header.slice(start, i);
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const name = token();
    if (!name) break;
    skip(/[ \t]/);
    if (header[i] === '=' && challenges.length > 0) {
      i++;
      skip(/[ \t]/);
      let value: string;
      if (header[i] === '"') {
        i++;
        value = '';
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        skip(/[^,\s]/);
        value = header.slice(start, i);
      }
      challenges[challenges.length - 1]!.params[name.toLowerCase()] = value;
    } else {
      // a token68 (`Basic abc==`) has no `=` directly after a name followed by text; we do not
      // need its value, so it simply starts a new challenge when it is a scheme
      challenges.push({ scheme: name.toLowerCase(), params: {} });
    }
  }
  return challenges;
}

/**
 * The `rel="next"` target of a `Link` header, resolved against the URL of the request that
 * returned it (distribution sends a path: `</v2/app/tags/list?last=b&n=1>; rel="next"`).
 */
export function parseNextLink(header: string | readonly string[] | undefined, requestUrl: string | URL): URL | undefined {
  if (header === undefined) return undefined;
  const text = typeof header === 'string' ? header : header.join(', ');
  for (const match of text.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const params = match[2] ?? '';
    const rel = /;\s*rel\s*=\s*"?([^";,]+)"?/i.exec(params);
    if (rel && rel[1]!.trim().split(/\s+/).map((r) => r.toLowerCase()).includes('next')) {
      try {
        return new URL(match[1]!, requestUrl);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * `Retry-After` in milliseconds from `now`: either delay-seconds or an HTTP date. Undefined
 * when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, now: number = Date.now()): number | undefined {
  const text = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only full HTTP dates (they contain a weekday/month name and a time), not bare numbers
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** `ratelimit-limit: 100;w=21600` → 100 (Docker Hub style); undefined when absent or unreadable. */
export function parseRateLimitNumber(value: string | readonly string[] | undefined): number | undefined {
  return parseRateLimit(value)?.count;
}

/**
 * `ratelimit-remaining: 76;w=21600` → `{ count: 76, windowSeconds: 21600 }` (Docker Hub, and the
 * IETF RateLimit draft's `;w=` parameter); undefined when absent or unreadable.
 */
export function parseRateLimit(value: string | readonly string[] | undefined): { count: number; windowSeconds?: number } | undefined {
  const text = typeof value === 'string' ? value : value?.[0];
  const match = text === undefined ? null : /^\s*(\d+)\s*(?:;(.*))?$/.exec(text);
  if (!match) return undefined;
  const window = /(?:^|;)\s*w\s*=\s*(\d+)/.exec(match[2] ?? '');
  const windowSeconds = window ? Number(window[1]) : undefined;
  return { count: Number(match[1]), ...(windowSeconds ? { windowSeconds } : {}) };
}
