import { KubeStatus } from './schema.js';

/**
 * An API call answered with an error status. `code` is the HTTP status (as client-node's
 * ApiException has it), `body` the server's answer (a Status, or text).
 */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';

  constructor(readonly code: number, readonly body: unknown, what: string) {
    super(`${what}: ${describeStatus(code, body)}`);
  }
}

function describeStatus(code: number, body: unknown): string {
  if (typeof body === 'string') {
    try {
      const parsed = KubeStatus.safeParse(JSON.parse(body));
      if (parsed.success && parsed.data.message) return `${code}: ${parsed.data.message}`;
    } catch { /* plain text body */ }
    return body.trim() ? `${code}: ${body.trim().slice(0, 200)}` : `HTTP ${code}`;
  }
  const parsed = KubeStatus.safeParse(body);
  return parsed.success && parsed.data.message ? `${code}: ${parsed.data.message}` : `HTTP ${code}`;
}

/** The HTTP status of a failed API call: KubeApiError, or client-node's ApiException (`code`). */
export function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The API server's own message (`409: Operation cannot be fulfilled ...`), for error text. */
export function apiMessage(error: unknown): string {
  const e = error as { code?: unknown; body?: unknown } | undefined;
  if (typeof e?.code === 'number' && e.body !== undefined) return describeStatus(e.code, e.body);
  return error instanceof Error ? error.message : String(error);
}
