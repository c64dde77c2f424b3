/**
 * A process-wide scrubber: a credential joins it the moment it is read (registry passwords,
 * tokens, webhook secrets, passed-through environment values), and every log line and run log
 * passes through `redactSecrets` or a `StreamRedactor`. Each secret is hidden as written and in
 * the encodings that tools echo it in: base64 (also inside a longer base64 text, such as
 * `base64("user:" + password)` or `base64("Bearer " + token)`), base64url and URL-encoding.
 */
const secrets = new Set<string>();
/** Every form to hide, longest first (so a longer form is replaced before a shorter one inside it). */
let patterns: string[] = [];
/** All patterns in one alternation, longest first: one pass over the text however many secrets there are. */
let matcher: RegExp | undefined;
/** The patterns by their first character, for finding a possible beginning at the end of a chunk. */
let byFirstChar = new Map<string, string[]>();
let longest = 0;
const REDACTED = '[REDACTED]';
/** Encoded forms shorter than this are not hidden: they would match ordinary text. */
const MIN_ENCODED_LENGTH = 6;

/** Registers a value that must never be shown. Values shorter than 4 characters are ignored
 * because redacting them would mangle ordinary text. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 4 || secrets.has(value)) return;
  secrets.add(value);
  const forms = new Set(patterns);
  for (const form of encodedForms(value)) forms.add(form);
  patterns = [...forms].sort((a, b) => b.length - a.length);
  longest = patterns[0]?.length ?? 0;
  matcher = new RegExp(patterns.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  byFirstChar = new Map();
  for (const pattern of patterns) byFirstChar.set(pattern[0]!, [...(byFirstChar.get(pattern[0]!) ?? []), pattern]);
}

/**
 * The secret as written, URL-encoded (upper- and lower-case escapes, `+` for spaces), and the
 * part of its base64 and base64url encodings that is the same wherever the secret sits in a
 * longer encoded text: for each of the three alignments, the characters made only of the
 * secret's own bits.
 */
export function encodedForms(value: string): string[] {
  const forms = new Set<string>([value]);
  const uri = encodeURIComponent(value);
  forms.add(uri);
  forms.add(uri.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()));
  forms.add(new URLSearchParams({ v: value }).toString().slice(2));
  const bytes = Buffer.from(value, 'utf8');
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64').replace(/=+$/, '');
    const core = encoded.slice(Math.ceil((8 * shift) / 6), Math.floor((8 * (shift + bytes.length)) / 6));
    if (core.length < MIN_ENCODED_LENGTH) continue;
    forms.add(core);
    forms.add(core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [...forms].filter((form) => form.length >= 4);
}

/** Replaces every registered secret (in every form) and URL passwords in `text`. */
export function redactSecrets(text: string): string {
  return redactUrlPasswords(replacePatterns(text));
}

function replacePatterns(text: string): string {
  return matcher ? text.replace(matcher, REDACTED) : text;
}

/** Credentials embedded in URLs (https://user:pass@host) are hidden even when not registered. */
function redactUrlPasswords(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^/\s@]+)@/gi, `$1$2:${REDACTED}@`);
}

/**
 * Redacts a stream of text that arrives in arbitrary chunks (a process's 64 KiB reads), so a
 * secret split across two chunks is still hidden: the end of a chunk that could be the start of
 * a secret is held back until the next chunk (or `flush`) shows whether it is one. At most the
 * longest registered form minus one character is held, and only while it matches a beginning.
 */
export class StreamRedactor {
  private carry = '';

  /** The redacted text that is safe to write now. */
  push(chunk: string): string {
    const text = replacePatterns(this.carry + chunk);
    const held = heldBack(text);
    this.carry = text.slice(text.length - held);
    return redactUrlPasswords(text.slice(0, text.length - held));
  }

  /** Whatever is held back; the stream is over. */
  flush(): string {
    const rest = this.carry;
    this.carry = '';
    return redactUrlPasswords(replacePatterns(rest));
  }
}

/** Length of the longest end of `text` that is a proper beginning of some pattern. */
function heldBack(text: string): number {
  for (let start = Math.max(0, text.length - (longest - 1)); start < text.length; start++) {
    const candidates = byFirstChar.get(text[start]!);
    if (!candidates) continue;
    const length = text.length - start;
    if (candidates.some((pattern) => pattern.length > length && text.startsWith(pattern.slice(0, length), start))) return length;
  }
  return 0;
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
