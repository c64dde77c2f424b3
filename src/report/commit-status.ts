import type { Dispatcher } from 'undici';
import { messageOf } from '../errors.js';
import { registerSecret, silentLogger, type Logger } from '../log/index.js';
import type { RunPhase } from '../store/index.js';
import { parseForgeRepository, type ForgeRepository } from './forge-repository.js';
import { RetryingHttp, errorDetail, type RetryPolicy } from './http.js';
import type { ReportResult, ReportedRun, RunReporter } from './types.js';

export interface CommitStatusOptions {
  /** The API token (read from a file or a Secret by the caller); registered as a secret. */
  readonly token: string;
  /** API base URL. @default https://api.github.com (GitHub), https://gitlab.com/api/v4 (GitLab) */
  readonly apiUrl?: string;
  /** The status's `context` (GitHub) or `name` (GitLab). @default 'keelson' */
  readonly context?: string;
  /** Base URL of keelson's status page; statuses link to `<base>/runs/<id>`. @default no link */
  readonly runPageBaseUrl?: string;
  /** Report to this project (`owner/name`, `group/sub/name`) instead of the one in the run's
   * repository URL: for local checkouts of a forge's repository. */
  readonly repository?: string;
  /** @default RETRY_DEFAULTS */
  readonly retry?: RetryPolicy;
  /** @default a silent logger */
  readonly logger?: Logger;
  /** @default a new undici Agent */
  readonly dispatcher?: Dispatcher;
  /** @default 'keelson' */
  readonly userAgent?: string;
}

/** The most GitHub accepts in a status description (longer is a 422). */
export const MAX_DESCRIPTION = 140;

/** A short human text for a run's state, cut to `max` characters (code points, not bytes). */
export function describeRun(run: ReportedRun, max: number = MAX_DESCRIPTION): string {
  const text = ((): string => {
    switch (run.phase) {
      case 'queued': return 'Run queued';
      case 'running': return 'Run started';
      case 'succeeded': {
        const took = run.startedAt && run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.startedAt) : Number.NaN;
        return Number.isFinite(took) && took >= 0 ? `Run succeeded in ${formatSeconds(took)}` : 'Run succeeded';
      }
      default: {
        const detail = run.message.replace(/\s+/g, ' ').trim();
        return `Run ${run.phase}${detail ? `: ${detail}` : ''}`;
      }
    }
  })();
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function formatSeconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * Posting a commit status with retries, shared by the GitHub and GitLab reporters. A status that
 * could not be posted is returned as a `failed` result and logged; nothing here throws.
 */
export abstract class CommitStatusReporter implements RunReporter {
  protected abstract readonly reporter: string;
  protected readonly token: string;
  protected readonly apiUrl: URL;
  /** apiUrl without a trailing slash, for joining paths */
  protected readonly apiBase: string;
  protected readonly context: string;
  protected readonly userAgent: string;
  private readonly runPageBaseUrl: string | undefined;
  private readonly repositoryOverride: string | undefined;
  private readonly http: RetryingHttp;
  private readonly logger: Logger;

  constructor(options: CommitStatusOptions, defaultApiUrl: string) {
    if (!options.token.trim()) throw new TypeError('commit status reporter: the token is empty');
    this.token = options.token.trim();
    registerSecret(this.token);
    this.apiBase = (options.apiUrl ?? defaultApiUrl).replace(/\/+$/, '');
    this.apiUrl = new URL(this.apiBase);
    this.context = options.context ?? 'keelson';
    this.userAgent = options.userAgent ?? 'keelson';
    this.runPageBaseUrl = options.runPageBaseUrl?.replace(/\/+$/, '');
    this.repositoryOverride = options.repository;
    this.logger = options.logger ?? silentLogger();
    this.http = new RetryingHttp(options.retry, this.logger, options.dispatcher);
  }

  /** The forge's state for a phase, e.g. GitHub `failure`, GitLab `failed`. */
  protected abstract stateFor(phase: RunPhase): string;
  /** The project path as this forge wants it, or a reason why the run cannot be reported. */
  protected abstract projectOf(repository: ForgeRepository): string | { skip: string };
  protected abstract statusUrl(project: string, sha: string): URL;
  protected abstract headers(): Record<string, string>;
  protected abstract body(state: string, description: string, targetUrl: string | undefined, run: ReportedRun): object;

  runStarted(run: ReportedRun): Promise<readonly ReportResult[]> {
    return this.post('run.started', this.stateFor('running'), { ...run, phase: 'running' });
  }

  runFinished(run: ReportedRun): Promise<readonly ReportResult[]> {
    return this.post('run.finished', this.stateFor(run.phase), run);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** `<base>/runs/<id>`, the run's page on the status page. */
  runUrl(run: Pick<ReportedRun, 'id'>): string | undefined {
    return this.runPageBaseUrl ? `${this.runPageBaseUrl}/runs/${encodeURIComponent(run.id)}` : undefined;
  }

  private async post(event: string, state: string, run: ReportedRun): Promise<readonly ReportResult[]> {
    const at = () => new Date().toISOString();
    const repository = this.repositoryOverride
      ? { host: this.apiUrl.host, path: this.repositoryOverride }
      : parseForgeRepository(run.repo);
    const project = repository ? this.projectOf(repository) : { skip: `${run.repo} is not a ${this.reporter.split('-')[0]} repository URL` };
    if (typeof project !== 'string') {
      return [{ reporter: this.reporter, target: this.apiUrl.host, event, state, outcome: 'skipped', attempts: 0, detail: project.skip, at: at() }];
    }
    const target = `${this.apiUrl.host} ${project}`;
    const log = this.logger.child({ reporter: this.reporter, project, commit: run.commit, run: run.id });
    if (!/^[0-9a-f]{7,64}$/i.test(run.commit)) {
      return [{ reporter: this.reporter, target, event, state, outcome: 'skipped', attempts: 0, detail: `"${run.commit}" is not a commit id`, at: at() }];
    }
    const body = JSON.stringify(this.body(state, describeRun(run), this.runUrl(run), run));
    try {
      const answer = await this.http.send({
        method: 'POST', url: this.statusUrl(project, run.commit),
        headers: { ...this.headers(), 'content-type': 'application/json', 'user-agent': this.userAgent },
        body: () => body,
      });
      if (answer.status >= 200 && answer.status <= 299) {
        log.debug({ state, attempts: answer.attempts }, 'commit status posted');
        return [{ reporter: this.reporter, target, event, state, outcome: 'posted', attempts: answer.attempts, status: answer.status, at: at() }];
      }
      const detail = `HTTP ${answer.status}: ${errorDetail(answer)}`;
      log.warn({ state, status: answer.status, attempts: answer.attempts, detail }, 'commit status not posted');
      return [{ reporter: this.reporter, target, event, state, outcome: 'failed', attempts: answer.attempts, status: answer.status, detail, at: at() }];
    } catch (error) {
      const detail = messageOf(error);
      const attempts = typeof (error as { attempts?: unknown }).attempts === 'number' ? (error as { attempts: number }).attempts : 1;
      log.warn({ state, attempts, detail }, 'commit status not posted');
      return [{ reporter: this.reporter, target, event, state, outcome: 'failed', attempts, detail, at: at() }];
    }
  }
}
