import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { InputError, messageOf } from '../errors.js';
import { registerSecret, silentLogger, type Logger } from '../log/index.js';
import type { CommitStatusReporter } from './commit-status.js';
import { GitHubStatusReporter } from './github-status.js';
import { GitLabStatusReporter } from './gitlab-status.js';
import type { RetryPolicy } from './http.js';
import type { ReportConfig, StatusTarget } from './schema.js';
import { SlackNotifier } from './slack-notifier.js';
import type { NotificationEvent, Notifier, ReportResult, ReportedRun, RunReporter } from './types.js';
import { WebhookNotifier } from './webhook-notifier.js';

export interface CreateReportersOptions {
  /** @default a silent logger */
  readonly logger?: Logger;
  /** Base URL of the status page; statuses and notifications link to `<base>/runs/<id>`. */
  readonly runPageBaseUrl?: string;
  /** Reads a `tokenSecret` (the caller knows the cluster); without it a tokenSecret is an error. */
  readonly readSecret?: (ref: { name: string; key: string }) => Promise<string>;
  /** Relative `tokenFile` paths start here. @default the working directory */
  readonly baseDir?: string;
  /** @default RETRY_DEFAULTS */
  readonly retry?: RetryPolicy;
  readonly dispatcher?: Dispatcher;
}

/**
 * Every reporter of a pipeline behind one object. `runStarted`/`runFinished` post commit
 * statuses and (on finish) the `run.finished` notifications; `notify` sends rollout and approval
 * events. None of them throws: each returns what every reporter did.
 */
export interface Reporters extends RunReporter, Notifier {
  close(): Promise<void>;
}

/** Reads a token file: trimmed, non-empty, registered as a secret at once. */
export async function readTokenFile(path: string, where: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(where, `cannot read token file ${path}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, { cause: error });
  }
  const token = text.trim();
  registerSecret(token);
  if (!token) throw new InputError(where, `token file ${path} is empty`);
  return token;
}

/**
 * Builds the reporters a `report:` config asks for. Reads every token up front, so a missing
 * token file is an InputError at start-up (exit 2), not a failed status at the first run.
 */
export async function createReporters(config: ReportConfig, options: CreateReportersOptions = {}): Promise<Reporters> {
  const logger = options.logger ?? silentLogger();
  const statuses: CommitStatusReporter[] = [];
  for (const [index, target] of config.statuses.entries()) {
    const where = `report.statuses[${index}]`;
    const token = await tokenOf(target, where, options);
    const common = {
      token, context: target.context, logger,
      ...(target.apiUrl ? { apiUrl: target.apiUrl } : {}),
      ...(target.repository ? { repository: target.repository } : {}),
      ...(options.runPageBaseUrl ? { runPageBaseUrl: options.runPageBaseUrl } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    };
    statuses.push(target.provider === 'github' ? new GitHubStatusReporter(common) : new GitLabStatusReporter(common));
  }
  const notifiers = config.notifications.map((target) => {
    const common = {
      url: target.url, events: target.events, timeout: target.timeout, logger,
      ...(options.runPageBaseUrl ? { runPageBaseUrl: options.runPageBaseUrl } : {}),
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    };
    return target.type === 'slack' ? new SlackNotifier(common) : new WebhookNotifier(common);
  });
  return new CompositeReporters(statuses, notifiers, logger);
}

async function tokenOf(target: StatusTarget, where: string, options: CreateReportersOptions): Promise<string> {
  if (target.tokenFile !== undefined) {
    const path = options.baseDir && !target.tokenFile.startsWith('/') ? `${options.baseDir}/${target.tokenFile}` : target.tokenFile;
    return readTokenFile(path, `${where}.tokenFile`);
  }
  const ref = target.tokenSecret!;
  if (!options.readSecret) throw new InputError(`${where}.tokenSecret`, 'Secrets can only be read in a cluster; use tokenFile here');
  let token: string;
  try {
    token = (await options.readSecret(ref)).trim();
  } catch (error) {
    throw new InputError(`${where}.tokenSecret`, `cannot read key "${ref.key}" of Secret ${ref.name}: ${messageOf(error)}`, { cause: error });
  }
  registerSecret(token);
  if (!token) throw new InputError(`${where}.tokenSecret`, `key "${ref.key}" of Secret ${ref.name} is empty`);
  return token;
}

interface Closable {
  close(): Promise<void>;
}

/** Fans out to every reporter at once; a reporter that throws anyway becomes a `failed` result. */
export class CompositeReporters implements Reporters {
  constructor(
    private readonly statuses: readonly (RunReporter & Closable)[],
    private readonly notifiers: readonly (Notifier & Closable)[],
    private readonly logger: Logger = silentLogger(),
  ) {}

  runStarted(run: ReportedRun): Promise<readonly ReportResult[]> {
    return this.all('run.started', this.statuses.map((reporter) => () => reporter.runStarted(run)));
  }

  runFinished(run: ReportedRun): Promise<readonly ReportResult[]> {
    return this.all('run.finished', [
      ...this.statuses.map((reporter) => () => reporter.runFinished(run)),
      ...this.notifiers.map((notifier) => () => notifier.notify({ kind: 'run.finished', run })),
    ]);
  }

  notify(event: NotificationEvent): Promise<readonly ReportResult[]> {
    return this.all(event.kind, this.notifiers.map((notifier) => () => notifier.notify(event)));
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.statuses, ...this.notifiers].map((part) => part.close()));
  }

  private async all(event: string, calls: readonly (() => Promise<readonly ReportResult[]>)[]): Promise<readonly ReportResult[]> {
    const settled = await Promise.allSettled(calls.map((call) => call()));
    return settled.flatMap((outcome): readonly ReportResult[] => {
      if (outcome.status === 'fulfilled') return outcome.value;
      this.logger.error({ event, error: messageOf(outcome.reason) }, 'reporter threw');
      return [{ reporter: 'unknown', target: '', event, outcome: 'failed', attempts: 0, detail: messageOf(outcome.reason), at: new Date().toISOString() }];
    });
  }
}
