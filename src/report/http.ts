import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { Duration } from '../domain/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { networkCode, parseRetryAfter } from '../registry/index.js';

/** One HTTP call to a forge or webhook API. */
export interface HttpCall {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  /** Called once per attempt, so a retry sends the body again from its start (a file is reopened). */
  readonly body?: () => string | Buffer | Readable;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  /** How many requests it took (1 when the first one was answered for good) */
  readonly attempts: number;
}

/** How hard to try. Every field has a default in RETRY_DEFAULTS. */
export interface RetryPolicy {
  /** Retries after a 429, a 5xx, a rate-limit 403 or a dropped connection. @default 3 */
  readonly maxRetries?: number;
  /** First backoff; doubles per retry, with jitter, when the server names no time. @default 500ms */
  readonly retryDelay?: Duration;
  /** A server asking to wait longer than this is not retried (the answer is returned). @default 60s */
  readonly maxWait?: Duration;
  /** Time for one request to be answered (connect, headers, body). @default 10s */
  readonly timeout?: Duration;
}

export const RETRY_DEFAULTS = {
  maxRetries: 3,
  retryDelay: Duration.ofMilliseconds(500),
  maxWait: Duration.ofSeconds(60),
  timeout: Duration.ofSeconds(10),
} as const;

/** The request could not be sent or was not answered, after every retry. */
export class HttpUnreachableError extends Error {
  override readonly name = 'HttpUnreachableError';
  constructor(readonly url: URL, readonly attempts: number, detail: string, options?: { cause?: unknown }) {
    super(`${url.origin}: ${detail} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`, options);
  }
}

const RETRIED_STATUSES = new Set([500, 502, 503, 504]);

/**
 * How long the server asks us to wait before trying again, or undefined when this answer is not
 * worth retrying. GitHub's primary rate limit is a 403 (or 429) with `x-ratelimit-remaining: 0`
 * and the reset time in epoch seconds; its secondary limits and most others send Retry-After.
 */
export function retryWait(status: number, headers: HttpAnswer['headers'], now: number = Date.now()): number | 'backoff' | undefined {
  const first = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const retryAfter = parseRetryAfter(first('retry-after'), now);
  const rateLimited = first('x-ratelimit-remaining') === '0';
  if (status === 429 || (status === 403 && rateLimited)) {
    if (retryAfter !== undefined) return retryAfter;
    const reset = Number(first('x-ratelimit-reset'));
    if (rateLimited && Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - now);
    return status === 429 ? 'backoff' : undefined;
  }
  if (RETRIED_STATUSES.has(status)) return retryAfter ?? 'backoff';
  return undefined;
}

/**
 * Sends one call with retries: 5xx, 429 and rate-limit 403 answers wait (Retry-After,
 * x-ratelimit-reset, else exponential backoff with jitter) and try again; any other status is
 * the caller's to judge and comes back at once. Network failures are retried too, then thrown as
 * HttpUnreachableError.
 */
export class RetryingHttp {
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;
  private readonly maxWaitMs: number;
  private readonly timeoutMs: number;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;

  constructor(policy: RetryPolicy = {}, private readonly logger: Logger = silentLogger(), dispatcher?: Dispatcher) {
    this.maxRetries = policy.maxRetries ?? RETRY_DEFAULTS.maxRetries;
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) throw new RangeError(`maxRetries must be a whole number >= 0, got ${this.maxRetries}`);
    this.retryDelayMs = (policy.retryDelay ?? RETRY_DEFAULTS.retryDelay).milliseconds;
    this.maxWaitMs = (policy.maxWait ?? RETRY_DEFAULTS.maxWait).milliseconds;
    this.timeoutMs = (policy.timeout ?? RETRY_DEFAULTS.timeout).milliseconds;
    if (this.timeoutMs <= 0) throw new RangeError('timeout must be > 0');
    this.ownsDispatcher = dispatcher === undefined;
    this.dispatcher = dispatcher ?? new Agent({ connect: { timeout: this.timeoutMs } });
  }

  async send(call: HttpCall, signal?: AbortSignal): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      let answer: Omit<HttpAnswer, 'attempts'>;
      try {
        answer = await this.once(call, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (attempt > this.maxRetries) {
          throw new HttpUnreachableError(call.url, attempt, describeNetworkError(error), { cause: error });
        }
        this.logger.debug({ url: call.url.origin, attempt, error: describeNetworkError(error) }, 'request failed, retrying');
        await sleep(this.backoff(attempt), undefined, signal ? { signal } : {});
        continue;
      }
      const wait = retryWait(answer.status, answer.headers);
      if (wait === undefined || attempt > this.maxRetries) return { ...answer, attempts: attempt };
      const ms = wait === 'backoff' ? this.backoff(attempt) : wait;
      if (ms > this.maxWaitMs) return { ...answer, attempts: attempt };
      this.logger.debug({ url: call.url.origin, status: answer.status, attempt, waitMs: ms }, 'server asked to retry, waiting');
      await sleep(ms, undefined, signal ? { signal } : {});
    }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private async once(call: HttpCall, signal?: AbortSignal): Promise<Omit<HttpAnswer, 'attempts'>> {
    const response = await request(call.url, {
      method: call.method,
      headers: call.headers,
      ...(call.body ? { body: call.body() } : {}),
      dispatcher: this.dispatcher,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(signal ? { signal } : {}),
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: response.headers, body };
  }

  private backoff(attempt: number): number {
    const base = this.retryDelayMs * 2 ** (attempt - 1);
    return Math.min(this.maxWaitMs, base / 2 + Math.random() * (base / 2));
  }
}

/** The `message` of a JSON error body (GitHub, GitLab and Slack all send one), else a short text. */
export function errorDetail(answer: Pick<HttpAnswer, 'status' | 'body'>): string {
  const text = answer.body.toString('utf8').trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown; errors?: unknown };
    const message = typeof parsed.message === 'string' ? parsed.message : typeof parsed.error === 'string' ? parsed.error : undefined;
    if (message) {
      const errors = Array.isArray(parsed.errors) ? parsed.errors.map(describeFieldError).filter(Boolean).join(', ') : '';
      return errors ? `${message}: ${errors}` : message;
    }
  } catch {
    // not JSON
  }
  return text && text.length < 200 && !text.includes('<') ? text : `HTTP ${answer.status}`;
}

/** GitHub's 422 `errors: [{ resource, field, code }]` entries, as `field already_exists`. */
function describeFieldError(entry: unknown): string {
  if (typeof entry === 'string') return entry;
  if (!entry || typeof entry !== 'object') return '';
  const { field, code, message } = entry as { field?: unknown; code?: unknown; message?: unknown };
  if (typeof message === 'string' && message) return message;
  return [field, code].filter((part) => typeof part === 'string').join(' ');
}

export function describeNetworkError(error: unknown): string {
  switch (networkCode(error)) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': return 'host name not found (DNS)';
    case 'UND_ERR_CONNECT_TIMEOUT': return 'connect timed out';
    case 'UND_ERR_HEADERS_TIMEOUT': case 'UND_ERR_BODY_TIMEOUT': return 'timed out waiting for an answer';
    case 'ECONNRESET': case 'UND_ERR_SOCKET': return 'connection closed by the server';
    default: return error instanceof Error ? error.message : String(error);
  }
}
