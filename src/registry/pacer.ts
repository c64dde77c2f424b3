import { parseRateLimit, parseRetryAfter } from './http-headers.js';
import { TokenBucket, delay } from './token-bucket.js';

export interface PacerOptions {
  /** The most requests a second, also the rate to start at. */
  readonly maxRate: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What an answer told the pacer, for the caller's log line. */
export interface PacerVerdict {
  /** The rate after this answer (requests a second) */
  readonly rate: number;
  /** The rate went down because of this answer */
  readonly slowedDown: boolean;
  /** A `ratelimit-remaining` below a tenth of `ratelimit-limit` */
  readonly nearlyUsedUp: boolean;
}

/** The slowest a registry is ever paced: one request a minute still notices when it recovers. */
const MIN_RATE = 1 / 60;
/** Answers without trouble for this long let the rate climb back a step. */
const RECOVERY_MS = 10_000;
/** Without a Retry-After, a 429 stops requests for this long. */
const DEFAULT_429_PAUSE_MS = 1_000;

/**
 * Paces the requests to one registry for one credential (Docker Hub counts per account, or per
 * address for anonymous pulls). Starts at `maxRate`; a 429 halves the rate and pauses until its
 * `Retry-After`; answers without trouble raise it back a tenth of `maxRate` every 10 s. A
 * `ratelimit-remaining` below a tenth of `ratelimit-limit` (Docker Hub's `76;w=21600`) spreads
 * what is left over the window instead of spending it at once.
 */
export class RegistryPacer {
  private readonly bucket: TokenBucket;
  private readonly now: () => number;
  private readonly maxRate: number;
  private adaptiveRate: number;
  private windowRate = Infinity;
  private pausedUntil = 0;
  private lastChange: number;

  constructor(options: PacerOptions) {
    this.now = options.now ?? Date.now;
    this.maxRate = options.maxRate;
    this.adaptiveRate = options.maxRate;
    this.bucket = new TokenBucket(options.maxRate, Math.max(1, options.maxRate), this.now);
    this.lastChange = this.now();
  }

  /** Requests a second allowed now. */
  get rate(): number {
    return this.bucket.rate;
  }

  /** Ms until requests may go again after a 429 (0: not paused). */
  pausedFor(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }

  /** Waits for the pause to end and for a token; rejects when `signal` aborts. */
  async take(signal?: AbortSignal): Promise<void> {
    for (let wait = this.pausedFor(); wait > 0; wait = this.pausedFor()) await delay(wait, signal);
    await this.bucket.take(signal);
  }

  /** Learns from one answer: its status and its rate-limit headers. */
  observe(status: number, headers: Readonly<Record<string, string | string[] | undefined>>): PacerVerdict {
    const now = this.now();
    let slowedDown = false;
    if (status === 429) {
      this.adaptiveRate = Math.max(MIN_RATE, this.adaptiveRate / 2);
      this.lastChange = now;
      slowedDown = true;
      const retryAfter = parseRetryAfter(headers['retry-after'], now);
      this.pausedUntil = Math.max(this.pausedUntil, now + (retryAfter ?? DEFAULT_429_PAUSE_MS));
    } else if (status < 500 && this.adaptiveRate < this.maxRate && now - this.lastChange >= RECOVERY_MS) {
      this.adaptiveRate = Math.min(this.maxRate, this.adaptiveRate + this.maxRate / 10);
      this.lastChange = now;
    }
    const limit = parseRateLimit(headers['ratelimit-limit']);
    const remaining = parseRateLimit(headers['ratelimit-remaining']);
    const nearlyUsedUp = limit !== undefined && remaining !== undefined && remaining.count < limit.count / 10;
    if (remaining !== undefined) {
      const windowSeconds = remaining.windowSeconds ?? limit?.windowSeconds;
      // At least one request per window, so the pacer notices when the window fills up again.
      this.windowRate = nearlyUsedUp && windowSeconds ? Math.max(1, remaining.count) / windowSeconds : Infinity;
    }
    const rate = Math.min(this.adaptiveRate, this.windowRate);
    if (rate < this.bucket.rate) slowedDown = true;
    if (rate !== this.bucket.rate) this.bucket.setRate(rate);
    return { rate, slowedDown, nearlyUsedUp };
  }
}
