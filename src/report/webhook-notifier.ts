import type { Dispatcher } from 'undici';
import { Duration } from '../domain/index.js';
import { messageOf } from '../errors.js';
import { registerSecret, silentLogger, type Logger } from '../log/index.js';
import { RetryingHttp, errorDetail } from './http.js';
import type { NotificationEvent, NotificationEventKind, Notifier, ReportResult } from './types.js';

export interface WebhookNotifierOptions {
  /** Where to POST. The whole URL is treated as a secret (Slack's carries its token); logs show the origin. */
  readonly url: string;
  /** Events sent; others are ignored. */
  readonly events: readonly NotificationEventKind[];
  /** Time for one attempt to be answered; a slow receiver must not hold up a run. @default 10s */
  readonly timeout?: Duration;
  /** Retries after a 5xx, 429 or dropped connection. @default 2 */
  readonly maxRetries?: number;
  /** Base URL of keelson's status page, for links to runs. @default no links */
  readonly runPageBaseUrl?: string;
  /** @default a silent logger */
  readonly logger?: Logger;
  readonly dispatcher?: Dispatcher;
}

/**
 * A generic JSON webhook: `POST url` with `{ event, at, run | rollout | approval }`. A failure is
 * logged and returned as a `failed` result; nothing here throws.
 */
export class WebhookNotifier implements Notifier {
  protected readonly reporter: string = 'webhook';
  protected readonly runPageBaseUrl: string | undefined;
  private readonly url: URL;
  private readonly events: ReadonlySet<NotificationEventKind>;
  private readonly http: RetryingHttp;
  private readonly logger: Logger;

  constructor(options: WebhookNotifierOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') throw new TypeError(`webhook URL ${this.url.origin} is not http(s)`);
    registerSecret(options.url);
    if (this.url.search.length > 4) registerSecret(this.url.search.slice(1));
    if (this.url.pathname.length > 4) registerSecret(this.url.pathname);
    this.events = new Set(options.events);
    this.runPageBaseUrl = options.runPageBaseUrl?.replace(/\/+$/, '');
    this.logger = options.logger ?? silentLogger();
    this.http = new RetryingHttp({
      maxRetries: options.maxRetries ?? 2,
      timeout: options.timeout ?? Duration.ofSeconds(10),
      maxWait: Duration.ofSeconds(30),
    }, this.logger, options.dispatcher);
  }

  /** The JSON body for an event. */
  protected payload(event: NotificationEvent): object {
    const at = new Date().toISOString();
    switch (event.kind) {
      case 'run.finished': {
        const url = this.runUrl(event.run.id);
        return { event: event.kind, at, run: { ...event.run, ...(url ? { url } : {}) } };
      }
      case 'rollout.done': {
        const { kind: _kind, ...rollout } = event;
        return { event: event.kind, at, rollout };
      }
      case 'approval.needed': {
        const { kind: _kind, ...approval } = event;
        return { event: event.kind, at, approval };
      }
    }
  }

  protected runUrl(id: string): string | undefined {
    return this.runPageBaseUrl ? `${this.runPageBaseUrl}/runs/${encodeURIComponent(id)}` : undefined;
  }

  async notify(event: NotificationEvent): Promise<readonly ReportResult[]> {
    if (!this.events.has(event.kind)) return [];
    const target = this.url.origin;
    const at = () => new Date().toISOString();
    const body = JSON.stringify(this.payload(event));
    const log = this.logger.child({ reporter: this.reporter, target, event: event.kind });
    try {
      const answer = await this.http.send({
        method: 'POST', url: this.url, body: () => body,
        headers: { 'content-type': 'application/json', 'user-agent': 'keelson' },
      });
      if (answer.status >= 200 && answer.status <= 299) {
        return [{ reporter: this.reporter, target, event: event.kind, outcome: 'posted', attempts: answer.attempts, status: answer.status, at: at() }];
      }
      const detail = `HTTP ${answer.status}: ${errorDetail(answer)}`;
      log.warn({ status: answer.status, attempts: answer.attempts, detail }, 'notification not delivered');
      return [{ reporter: this.reporter, target, event: event.kind, outcome: 'failed', attempts: answer.attempts, status: answer.status, detail, at: at() }];
    } catch (error) {
      const detail = messageOf(error);
      const attempts = typeof (error as { attempts?: unknown }).attempts === 'number' ? (error as { attempts: number }).attempts : 1;
      log.warn({ attempts, detail }, 'notification not delivered');
      return [{ reporter: this.reporter, target, event: event.kind, outcome: 'failed', attempts, detail, at: at() }];
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
