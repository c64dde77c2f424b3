import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactDeep, redactSecrets } from '../log/index.js';
import { RequestError } from './errors.js';

/** Reads the whole body, refusing (413) once it passes `limit` bytes, without buffering the rest. */
export async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): RequestError {
  return new RequestError(413, `request body is larger than ${limit} bytes`);
}

/** JSON from a raw body; a syntax error is a 400 with the parser's one-line reason. */
export function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new RequestError(400, `malformed JSON: ${oneLine((error as Error).message)}`);
  }
}

/** A form (`application/x-www-form-urlencoded`) or JSON body as an object; empty is `{}`. */
export function parseFields(request: IncomingMessage, raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  if (isForm(request)) return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  const value = parseJson(raw);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new RequestError(400, 'expected a JSON object');
  return value as Record<string, unknown>;
}

export function isForm(request: IncomingMessage): boolean {
  return (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

export function parseCookies(request: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      out.set(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // a cookie someone else set with bad escapes is not ours
    }
  }
  return out;
}

/** JSON with every string redacted. Round-trips through JSON first so class instances are plain. */
export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(redactDeep(JSON.parse(JSON.stringify(value ?? null))));
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  response.end(body);
}

export function sendText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  response.end(redactSecrets(text));
}

/** An HTML page with a CSP that allows only the page's own nonce'd style and script. */
export function sendHtml(response: ServerResponse, status: number, page: string, nonce: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // same-origin keeps the Origin header on our own form posts (no-referrer would make it "null")
    'referrer-policy': 'same-origin',
    ...headers,
  });
  response.end(page);
}

export function redirect(response: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  response.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
  response.end();
}

/**
 * A local path to go back to after signing in; anything else is `/`. Browsers drop tabs and
 * newlines from a Location before resolving it (`/<TAB>/evil.example` becomes `//evil.example`,
 * another host) and treat `\\` like `/`, so control characters go first, then only a path that
 * starts with exactly one slash is kept.
 */
export function safeNext(next: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  const path = (next ?? '').replace(/[\u0000-\u001f\u007f]/g, '');
  return /^\/(?![/\\])/.test(path) ? path : '/';
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ');
}
