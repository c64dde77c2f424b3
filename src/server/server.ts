import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseRunId, type RunId } from '../domain/index.js';
import { InputError, isKeelsonError, messageOf } from '../errors.js';
import { registerSecret, silentLogger, type Logger } from '../log/index.js';
import { isTerminal, type RunPhase, type RunRecord } from '../store/index.js';
import { traceRun, traceRuns, type TracedRun } from '../trace/index.js';
import { Authenticator, SESSION_COOKIE, type Credential, type Identity } from './auth.js';
import { ListenError, RequestError } from './errors.js';
import {
  isForm, oneLine, parseFields, parseJson, readBody, redirect, safeNext, sendHtml, sendJson, sendText,
} from './http.js';
import { ThrottledWarning } from './log-throttle.js';
import { streamLog } from './log-stream.js';
import { metricsRegistry, webhookDeliveriesTotal } from '../metrics/index.js';
import { renderErrorPage, renderLoginPage, renderOverview, renderRunPage, type OverviewData, type PageContext } from './pages.js';
import { Login, Vote } from './schema.js';
import { RecentSet } from './recent-set.js';
import type {
  KeelsonServer, ListeningServer, Readiness, ReadinessReporter, ServerOptions, ServerSources, ServerStore, WatchInfo, WorkloadInfo,
} from './types.js';
import { withRegistryChecks } from './workload-checks.js';
import { parseGitHubPush, parseRegistryNotification, pushedRepositories, verifyGitHubSignature } from './webhooks.js';

const DEFAULTS = {
  maxBodyBytes: 1024 * 1024,
  recentRuns: 50,
  logPollMs: 500,
  readyTimeoutMs: 2000,
  host: '127.0.0.1',
  /** GitHub retries a failed delivery for a few hours at most; a day covers manual redelivery too. */
  replayWindowMs: 24 * 3600 * 1000,
  /** Two keys per delivery: well above a day of pushes for the repositories one keelson watches. */
  replayCapacity: 20_000,
  /** A flood of refused requests logs its first line, then one line per minute with the count. */
  warnIntervalMs: 60_000,
} as const;

const MAX_LIST_LIMIT = 1000;
const RUN_PHASES: readonly RunPhase[] = ['queued', 'running', 'succeeded', 'failed', 'skipped', 'interrupted', 'cancelled'];

type Handler = (request: IncomingMessage, response: ServerResponse, url: URL, params: string[]) => Promise<void>;
interface Route {
  readonly method: 'GET' | 'POST';
  readonly pattern: RegExp;
  readonly handle: Handler;
}

/**
 * keelson's HTTP server: health, readiness, metrics, webhooks, the JSON API and the status page,
 * on node:http. Each section comes from an optional source; without it the section is left out.
 *
 *   const server = createServer({ store, sources: { watches: gitWatcher, registry: registryWatcher }, auth: { token } });
 *   const { url, close } = await server.listen(8080, '0.0.0.0');
 */
export function createServer(options: ServerOptions): KeelsonServer {
  return new StatusServer(options);
}

class StatusServer implements KeelsonServer {
  private readonly store: ServerStore;
  private readonly log: Logger;
  private readonly sources: ServerSources;
  private readonly auth: Authenticator;
  /** Session cookies are Secure on every request, not only on those that arrive over TLS. */
  private readonly secureCookies: boolean;
  private readonly githubSecret?: string;
  private readonly registryTokenDigest?: Buffer;
  /** Verified GitHub deliveries already acted on, by delivery id and by body digest. */
  private readonly deliveries = new RecentSet({ capacity: DEFAULTS.replayCapacity, ttlMs: DEFAULTS.replayWindowMs });
  private readonly warnings: Record<'badSignature' | 'replay' | 'registryToken' | 'wrongSignIn', ThrottledWarning>;
  private readonly maxBodyBytes: number;
  private readonly recentRuns: number;
  private readonly logPollMs: number;
  private readonly readyTimeoutMs: number;
  private readonly routes: readonly Route[];
  /** Aborted by close(): ends every live log stream. */
  private readonly closing = new AbortController();
  private listening = false;

  constructor(options: ServerOptions) {
    this.store = options.store;
    this.log = (options.logger ?? silentLogger()).child({ part: 'server' });
    this.sources = options.sources ?? {};
    this.auth = new Authenticator(options.auth, options.store);
    this.secureCookies = options.publicUrl !== undefined && publicUrlProtocol(options.publicUrl) === 'https:';
    if (options.githubWebhookSecret !== undefined) {
      if (options.githubWebhookSecret === '') throw new InputError('server githubWebhookSecret', 'is empty');
      registerSecret(options.githubWebhookSecret);
      this.githubSecret = options.githubWebhookSecret;
    }
    if (options.registryWebhookToken !== undefined) {
      if (options.registryWebhookToken.trim() === '') throw new InputError('server registryWebhookToken', 'is empty');
      registerSecret(options.registryWebhookToken);
      this.registryTokenDigest = sha256(options.registryWebhookToken);
    }
    const warning = (message: string): ThrottledWarning => new ThrottledWarning(this.log, message, DEFAULTS.warnIntervalMs);
    this.warnings = {
      badSignature: warning('github webhook with a bad signature'),
      replay: warning('github webhook delivered again; not acted on'),
      registryToken: warning('registry webhook without the right token'),
      wrongSignIn: warning('sign-in with a wrong token'),
    };
    // Counts still held are written when the server stops.
    this.closing.signal.addEventListener('abort', () => Object.values(this.warnings).forEach((w) => w.flush()), { once: true });
    this.maxBodyBytes = positive('maxBodyBytes', options.maxBodyBytes ?? DEFAULTS.maxBodyBytes);
    this.recentRuns = positive('recentRuns', options.recentRuns ?? DEFAULTS.recentRuns);
    this.logPollMs = positive('logPollMs', options.logPollMs ?? DEFAULTS.logPollMs);
    this.readyTimeoutMs = positive('readyTimeoutMs', options.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs);
    this.routes = this.buildRoutes();
  }

  readonly handler = (request: IncomingMessage, response: ServerResponse): void => {
    void this.dispatch(request, response);
  };

  async listen(port: number, host: string = DEFAULTS.host): Promise<ListeningServer> {
    // One listener per server: close() ends the live log streams of this instance.
    if (this.listening) throw new InputError('server listen', 'already listening; create another server for a second port');
    this.listening = true;
    const server = createHttpServer(this.handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        reject(new ListenError(shown, error.code, { cause: error }));
      });
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${shownHost}:${address.port}`;
    this.log.info({ url }, 'http server listening');
    return {
      url,
      port: address.port,
      close: () => new Promise<void>((resolve) => {
        this.closing.abort();
        server.close(() => resolve());
        server.closeIdleConnections();
        // Streams end on the abort above; anything still open after that is cut.
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      }),
    };
  }

  private buildRoutes(): Route[] {
    const get = (pattern: RegExp, handle: Handler): Route => ({ method: 'GET', pattern, handle });
    const post = (pattern: RegExp, handle: Handler): Route => ({ method: 'POST', pattern, handle });
    return [
      get(/^\/healthz$/, async (_q, res) => sendText(res, 200, 'ok\n')),
      get(/^\/readyz$/, (q, res) => this.readyz(res)),
      get(/^\/metrics$/, (q, res) => this.metrics(res)),
      post(/^\/webhooks\/registry$/, (q, res, url) => this.registryWebhook(q, res, url)),
      post(/^\/webhooks\/github$/, (q, res) => this.githubWebhook(q, res)),
      get(/^\/api\/watches$/, this.read(async () => this.watchesWithRuns(await this.need('watches').watches()))),
      post(/^\/api\/watches\/check$/, (q, res, url) => this.checkWatches(q, res, url)),
      get(/^\/api\/registry$/, this.read(async () => (await this.need('registry').jobs()))),
      post(/^\/api\/registry\/check$/, (q, res, url) => this.checkRegistry(q, res, url)),
      get(/^\/api\/runs$/, this.read(async (url) => traceRuns(this.store, await this.store.listRuns(runFilter(url))))),
      get(/^\/api\/runs\/([^/]+)$/, this.read(async (_url, [id]) => traceRun(this.store, await this.run(id!)))),
      get(/^\/api\/runs\/([^/]+)\/log$/, (q, res, url, [id]) => this.runLog(q, res, url, id!)),
      get(/^\/api\/workloads$/, this.read(async () => this.workloadsWithChecks(await this.need('workloads').workloads()))),
      get(/^\/api\/approvals$/, this.read(async () => this.need('approvals').pending())),
      post(/^\/api\/approvals\/([^/]+)\/(approve|reject)$/, (q, res, _u, [id, vote]) => this.vote(q, res, id!, vote as 'approve' | 'reject')),
      get(/^\/api\/dependencies$/, this.read(async () => (await this.need('dependencies').dependencies()))),
      get(/^\/$/, (q, res, url) => this.overviewPage(q, res, url)),
      get(/^\/runs\/([^/]+)$/, (q, res, _u, [id]) => this.runPage(q, res, id!)),
      get(/^\/login$/, (q, res, url) => this.loginPage(q, res, url)),
      post(/^\/login$/, (q, res) => this.login(q, res)),
      post(/^\/logout$/, (q, res) => this.logout(q, res)),
    ];
  }

  private async dispatch(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = requestUrl(request);
    response.once('finish', () => this.log.debug({ method: request.method, path: url.pathname, status: response.statusCode }, 'http request'));
    try {
      if (url === UNPARSABLE_URL) throw new RequestError(400, 'malformed request target');
      const matching = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (matching.length === 0) throw new RequestError(404, `no such page: ${url.pathname}`);
      const route = matching.find((r) => r.method === request.method || (r.method === 'GET' && request.method === 'HEAD'));
      if (!route) {
        response.setHeader('allow', [...new Set(matching.map((r) => r.method))].join(', '));
        throw new RequestError(405, `${request.method} is not allowed on ${url.pathname}`);
      }
      const params = route.pattern.exec(url.pathname)!.slice(1).map(decodePathPart);
      await route.handle(request, response, url, params);
    } catch (error) {
      this.fail(request, response, url, error);
    }
  }

  private fail(request: IncomingMessage, response: ServerResponse, url: URL, error: unknown): void {
    const status = statusOf(error);
    if (status >= 500) this.log.error({ path: url.pathname, err: messageOf(error) }, 'request failed');
    else this.log.debug({ path: url.pathname, status, err: messageOf(error) }, 'request refused');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const message = status >= 500 && !isKeelsonError(error) ? 'internal error' : oneLine(messageOf(error));
    if (status === 401) response.setHeader('www-authenticate', 'Bearer realm="keelson"');
    if (wantsHtml(request, url)) {
      if (status === 401 && request.method === 'GET') {
        redirect(response, `/login?next=${encodeURIComponent(url.pathname + url.search)}`);
        return;
      }
      const ctx = this.pageContext('none');
      sendHtml(response, status, renderErrorPage(ctx, status, message), ctx.nonce);
      return;
    }
    sendJson(response, status, { error: message });
  }

  /** A GET JSON endpoint that needs read access. */
  private read(produce: (url: URL, params: string[]) => Promise<unknown>): Handler {
    return async (request, response, url, params) => {
      await this.auth.authorizeRead(request);
      sendJson(response, 200, await produce(url, params));
    };
  }

  private need<K extends Exclude<keyof ServerSources, 'gitPush'>>(name: K): NonNullable<ServerSources[K]> {
    const source = this.sources[name];
    if (!source) throw new RequestError(404, `this server has no ${name} source`);
    return source as NonNullable<ServerSources[K]>;
  }

  private async run(idText: string) {
    const id = runIdOf(idText);
    const run = await this.store.getRun(id);
    if (!run) throw new RequestError(404, `no run ${idText} in ${this.store.description}`);
    return run;
  }

  /** The watches, each with its newest run from the store: a failed build shows, not only failed polls. */
  /** Workloads with their failing registry checks marked; the registry's own failure leaves them unmarked. */
  private async workloadsWithChecks(workloads: readonly WorkloadInfo[]): Promise<WorkloadInfo[]> {
    const registry = this.sources.registry;
    const jobs = registry ? await Promise.resolve().then(() => registry.jobs()).catch(() => []) : [];
    return withRegistryChecks(workloads, jobs);
  }

  private async watchesWithRuns(watches: readonly WatchInfo[]): Promise<WatchInfo[]> {
    return Promise.all(watches.map(async (watch) => {
      const [run] = await this.store.listRuns({ watch: watch.key, limit: 1 });
      return run ? { ...watch, lastRun: lastRunOf(run) } : { ...watch };
    }));
  }

  // ---- health, readiness, metrics

  private async readyz(response: ServerResponse): Promise<void> {
    const problems: string[] = [];
    try {
      await withTimeout(this.store.listRuns({ limit: 1 }), this.readyTimeoutMs, `no answer within ${this.readyTimeoutMs} ms`);
    } catch (error) {
      problems.push(`store ${this.store.description}: ${oneLine(messageOf(error))}`);
    }
    const reporters = Object.entries(this.sources) as [string, ReadinessReporter | undefined][];
    await Promise.all(reporters.map(async ([name, source]) => {
      if (!source || typeof source.ready !== 'function') return;
      let state: Readiness;
      try {
        state = await withTimeout(Promise.resolve(source.ready()), this.readyTimeoutMs, `no answer within ${this.readyTimeoutMs} ms`);
      } catch (error) {
        state = { ready: false, reason: oneLine(messageOf(error)) };
      }
      if (!state.ready) problems.push(`${name}: ${state.reason}`);
    }));
    if (problems.length === 0) sendText(response, 200, 'ready\n');
    else sendText(response, 503, `not ready: ${problems.sort().join('; ')}\n`);
  }

  private async metrics(response: ServerResponse): Promise<void> {
    const text = await metricsRegistry.metrics();
    response.writeHead(200, { 'content-type': metricsRegistry.contentType });
    response.end(text);
  }

  // ---- webhooks

  private async registryWebhook(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const counted = countDelivery('registry');
    try {
      const registry = this.sources.registry;
      if (!registry) throw new RequestError(404, 'registry webhooks need the registry watcher, which this server does not run');
      this.checkRegistryToken(request, url);
      const notification = parseRegistryNotification(parseJson(await readBody(request, this.maxBodyBytes)));
      const repositories = pushedRepositories(notification);
      for (const repository of repositories) {
        // Not awaited: the sender only needs to know we took it; a check may take a while.
        void registry.checkNow(repository).catch((error: unknown) => {
          this.log.warn({ repository, err: messageOf(error) }, 'check after registry webhook failed');
        });
      }
      this.log.info({ format: notification.format, repositories }, 'registry webhook');
      counted(repositories.length > 0 ? 'accepted' : 'ignored');
      sendJson(response, repositories.length > 0 ? 202 : 200, { format: notification.format, repositories });
    } catch (error) {
      counted(resultOf(error));
      throw error;
    }
  }

  private async githubWebhook(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const counted = countDelivery('github');
    try {
      const sink = this.sources.gitPush;
      if (!this.githubSecret) {
        throw new RequestError(404, 'GitHub webhooks are not configured: start keelson daemon with --github-secret-file FILE (or server.githubSecretFile in keelson.yaml) and set the same secret on the GitHub webhook');
      }
      if (!sink) throw new RequestError(404, 'GitHub webhooks are not configured: this server runs no git watches to hand pushes to');
      const raw = await readBody(request, this.maxBodyBytes);
      const signature = header(request, 'x-hub-signature-256');
      const delivery = header(request, 'x-github-delivery');
      if (!verifyGitHubSignature(this.githubSecret, raw, signature)) {
        this.warnings.badSignature.note({ delivery, signed: signature !== undefined });
        throw new RequestError(401, signature === undefined ? 'missing X-Hub-Signature-256' : 'X-Hub-Signature-256 does not match the body');
      }
      // The signature covers the body only: a replay may carry any delivery id, so the body's
      // digest is remembered as well. GitHub's own redelivery of a handled event is a replay too.
      const keys = [`body:${sha256(raw).toString('hex')}`, ...(delivery ? [`id:${delivery}`] : [])];
      if (keys.some((key) => this.deliveries.has(key))) {
        this.warnings.replay.note({ delivery });
        counted('replayed');
        sendJson(response, 200, { replayed: true, ...(delivery ? { delivery } : {}), note: 'this delivery was handled before; nothing done' });
        return;
      }
      keys.forEach((key) => this.deliveries.add(key));
      const event = header(request, 'x-github-event');
      const body = parseJson(raw);
      if (event === 'ping') {
        counted('ignored');
        sendJson(response, 200, { pong: true });
        return;
      }
      const push = event === 'push' ? parseGitHubPush(body) : undefined;
      if (!push) {
        counted('ignored');
        sendJson(response, 200, { ignored: event === 'push' ? 'not a branch update' : `event ${event ?? '(none)'}` });
        return;
      }
      void Promise.resolve().then(() => sink.push(push)).catch((error: unknown) => {
        this.log.warn({ branch: push.branch, err: messageOf(error) }, 'git push from webhook failed');
      });
      this.log.info({ branch: push.branch, commit: push.commit }, 'github push webhook');
      counted('accepted');
      sendJson(response, 202, { branch: push.branch, commit: push.commit });
    } catch (error) {
      counted(resultOf(error));
      throw error;
    }
  }

  /** Passes when no token is configured, or the request carries it (header or query). */
  private checkRegistryToken(request: IncomingMessage, url: URL): void {
    if (!this.registryTokenDigest) return;
    const authorization = /^(?:Bearer|Token)\s+(\S+)$/i.exec(header(request, 'authorization')?.trim() ?? '')?.[1];
    const given = authorization ?? url.searchParams.get('token') ?? undefined;
    if (given !== undefined && timingSafeEqual(sha256(given), this.registryTokenDigest)) return;
    this.warnings.registryToken.note({ tokenGiven: given !== undefined });
    throw new RequestError(401, given === undefined
      ? 'this endpoint needs the registry webhook token (Authorization: Bearer TOKEN, or ?token=TOKEN)'
      : 'wrong registry webhook token');
  }

  // ---- API actions

  private async checkWatches(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    await this.auth.authorizeWrite(request);
    const watches = this.need('watches');
    if (typeof watches.checkNow !== 'function') throw new RequestError(404, 'this server cannot poll its watches on demand');
    const key = url.searchParams.get('watch') ?? undefined;
    if (key !== undefined && !(await watches.watches()).some((w) => w.key === key)) throw new RequestError(404, `no watch ${key}`);
    void Promise.resolve().then(() => watches.checkNow!(key)).catch((error: unknown) => {
      this.log.warn({ watch: key, err: messageOf(error) }, 'poll on demand failed');
    });
    await this.done(request, response, { checking: key ?? 'all' });
  }

  private async checkRegistry(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    await this.auth.authorizeWrite(request);
    const registry = this.need('registry');
    const repository = url.searchParams.get('repository') ?? undefined;
    void registry.checkNow(repository).catch((error: unknown) => {
      this.log.warn({ repository, err: messageOf(error) }, 'registry check on demand failed');
    });
    await this.done(request, response, { checking: repository ?? 'all' });
  }

  private async vote(request: IncomingMessage, response: ServerResponse, id: string, vote: 'approve' | 'reject'): Promise<void> {
    const identity = await this.auth.authorizeWrite(request);
    const approvals = this.need('approvals');
    const fields = Vote.safeParse(parseFields(request, await readBody(request, this.maxBodyBytes)));
    if (!fields.success) throw new RequestError(400, `by: ${fields.error.issues[0]!.message}`);
    const by = fields.data.by ?? voterOf(identity);
    const approval = vote === 'approve' ? await approvals.approve(id, by) : await approvals.reject(id, by);
    this.log.info({ approval: id, vote, by }, 'approval vote');
    await this.done(request, response, approval, '/#approvals');
  }

  /** A form post goes back to the page; an API call gets JSON. */
  private async done(request: IncomingMessage, response: ServerResponse, value: unknown, back = '/'): Promise<void> {
    if (isForm(request)) redirect(response, back);
    else sendJson(response, 202, value);
  }

  private async runLog(request: IncomingMessage, response: ServerResponse, url: URL, idText: string): Promise<void> {
    await this.auth.authorizeRead(request);
    const run = await this.run(idText);
    const from = offsetOf(header(request, 'last-event-id') ?? url.searchParams.get('offset') ?? '0');
    const follow = ['1', 'true'].includes(url.searchParams.get('follow') ?? '') || (request.headers.accept ?? '').includes('text/event-stream');
    if (!follow) {
      const log = await this.store.readLog(run.id, from);
      sendText(response, 200, log.text, { 'x-log-offset': String(log.offset) });
      return;
    }
    const stop = new AbortController();
    const onClosing = (): void => stop.abort();
    this.closing.signal.addEventListener('abort', onClosing, { once: true });
    response.on('close', onClosing);
    try {
      await streamLog(response, { store: this.store, runId: run.id, fromOffset: from, pollMs: this.logPollMs, signal: stop.signal, logger: this.log });
    } finally {
      this.closing.signal.removeEventListener('abort', onClosing);
    }
  }

  // ---- pages

  private async overviewPage(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const { credential } = await this.auth.authorizeRead(request);
    const limit = limitOf(url.searchParams.get('limit'), this.recentRuns);
    const problems: string[] = [];
    const ask = async <T>(name: string, work: (() => T | Promise<T>) | undefined): Promise<T | undefined> => {
      if (!work) return undefined;
      try {
        return await work();
      } catch (error) {
        problems.push(`${name}: ${oneLine(messageOf(error))}`);
        return undefined;
      }
    };
    const { watches, registry, workloads, approvals, dependencies } = this.sources;
    const [runs, w, j, wl, a, d] = await Promise.all([
      this.store.listRuns({ limit }).then((listed) => traceRuns(this.store, listed)),
      ask('watches', watches && (async () => this.watchesWithRuns(await watches.watches()))),
      ask('registry', registry && (() => registry.jobs())),
      ask('workloads', workloads && (() => workloads.workloads())),
      ask('approvals', approvals && (() => approvals.pending())),
      ask('dependencies', dependencies && (() => dependencies.dependencies())),
    ]);
    const data: OverviewData = {
      storeDescription: this.store.description,
      runs,
      problems,
      ...(w && { watches: w }),
      ...(j && { jobs: j }),
      ...(wl && { workloads: withRegistryChecks(wl, j ?? []) }),
      ...(a && { approvals: a }),
      ...(d && { dependencies: d }),
    };
    const ctx = this.pageContext(credential);
    sendHtml(response, 200, renderOverview(data, ctx), ctx.nonce);
  }

  private async runPage(request: IncomingMessage, response: ServerResponse, idText: string): Promise<void> {
    const { credential } = await this.auth.authorizeRead(request);
    const run: TracedRun = await traceRun(this.store, await this.run(idText));
    const log = await this.store.readLog(run.id);
    const ctx = this.pageContext(credential);
    sendHtml(response, 200, renderRunPage(run, log, ctx), ctx.nonce);
  }

  private async loginPage(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    if (!this.auth.writable) throw new RequestError(404, 'signing in is disabled: the server has no API token');
    const ctx = this.pageContext('none');
    sendHtml(response, 200, renderLoginPage(ctx, safeNext(url.searchParams.get('next') ?? undefined)), ctx.nonce);
  }

  private async login(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!this.auth.writable) throw new RequestError(404, 'signing in is disabled: the server has no API token');
    const parsed = Login.safeParse(parseFields(request, await readBody(request, this.maxBodyBytes)));
    const next = safeNext(parsed.success ? parsed.data.next : undefined);
    if (!parsed.success || !this.auth.tokenMatches(parsed.data.token)) {
      this.warnings.wrongSignIn.note({});
      const ctx = this.pageContext('none');
      sendHtml(response, 403, renderLoginPage(ctx, next, parsed.success ? 'Wrong token.' : parsed.error.issues[0]!.message), ctx.nonce);
      return;
    }
    const session = await this.auth.signIn(parsed.data.name || undefined);
    const maxAge = Math.floor(this.auth.sessionMaxAgeMs / 1000);
    redirect(response, next, { 'set-cookie': [`${SESSION_COOKIE}=${session}; ${this.cookieAttributes(request)}; Max-Age=${maxAge}`] });
  }

  private async logout(request: IncomingMessage, response: ServerResponse): Promise<void> {
    await this.auth.signOut(request);
    redirect(response, '/', { 'set-cookie': `${SESSION_COOKIE}=; ${this.cookieAttributes(request)}; Max-Age=0` });
  }

  private cookieAttributes(request: IncomingMessage): string {
    return `Path=/; HttpOnly; SameSite=Strict${this.secureCookies || isHttps(request) ? '; Secure' : ''}`;
  }

  private pageContext(credential: Credential): PageContext {
    const signedIn = credential !== 'none';
    return {
      nonce: randomBytes(16).toString('base64'),
      voting: !this.auth.writable ? 'disabled' : signedIn ? 'allowed' : 'login',
      signedIn,
      now: new Date(),
    };
  }
}

function lastRunOf(run: RunRecord): NonNullable<WatchInfo['lastRun']> {
  return {
    id: run.id, commit: run.commit, phase: run.phase, reason: run.reason, message: run.message,
    at: (isTerminal(run.phase) ? run.finishedAt : undefined) ?? run.startedAt ?? run.createdAt,
  };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new InputError(`server ${name}`, `must be a positive number, got ${value}`);
  return value;
}

function statusOf(error: unknown): number {
  if (error instanceof RequestError) return error.status;
  if (isKeelsonError(error)) {
    if (error.code === 'KEELSON_APPROVAL_NOT_FOUND' || error.code === 'KEELSON_RUN_NOT_FOUND') return 404;
    if (error.code === 'KEELSON_APPROVAL_CLOSED') return 409;
    // A standby replica asked to approve: another replica (the leader) can answer it.
    if (error.code === 'KEELSON_STORE_UNAVAILABLE' || error.code === 'KEELSON_NOT_LEADER') return 503;
    return error.exitCode === 2 ? 400 : 500;
  }
  return 500;
}

function sha256(data: string | Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function resultOf(error: unknown): string {
  switch (statusOf(error)) {
    case 400: return 'bad_request';
    case 401: return 'unauthorized';
    case 404: return 'not_configured';
    case 413: return 'too_large';
    default: return 'error';
  }
}

/** Counts one delivery exactly once, whatever path it leaves by. */
function countDelivery(source: 'registry' | 'github'): (result: string) => void {
  let done = false;
  return (result) => {
    if (done) return;
    done = true;
    webhookDeliveriesTotal.inc({ source, result });
  };
}

function wantsHtml(request: IncomingMessage, url: URL): boolean {
  // Webhook senders read JSON, also `curl -d` (which sends a form content type).
  if (url.pathname.startsWith('/webhooks/')) return false;
  if (url.pathname.startsWith('/api/') || ['/healthz', '/readyz', '/metrics'].includes(url.pathname)) {
    return isForm(request);
  }
  return true;
}

const UNPARSABLE_URL = new URL('http://keelson.invalid/');

/** The request target as a URL; a path starting with `//` stays a path (not a host). */
function requestUrl(request: IncomingMessage): URL {
  const target = request.url ?? '/';
  try {
    return new URL(target.startsWith('/') ? `http://keelson.invalid${target}` : target);
  } catch {
    return UNPARSABLE_URL;
  }
}

/** A path segment a client escaped badly (`%ZZ`, a cut UTF-8 sequence) is the client's error. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RequestError(400, 'malformed percent-encoding in the path');
  }
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function runIdOf(text: string): RunId {
  try {
    return parseRunId(text);
  } catch {
    throw new RequestError(404, `no run ${text}: not a run id (expected something like 20261123-101500-a1b2c3)`);
  }
}

function runFilter(url: URL): { watch?: string; phase?: RunPhase; limit: number } {
  const watch = url.searchParams.get('watch') ?? undefined;
  const phase = url.searchParams.get('phase') ?? undefined;
  if (phase !== undefined && !RUN_PHASES.includes(phase as RunPhase)) {
    throw new RequestError(400, `phase: expected one of ${RUN_PHASES.join(', ')}, got "${phase}"`);
  }
  return { ...(watch ? { watch } : {}), ...(phase ? { phase: phase as RunPhase } : {}), limit: limitOf(url.searchParams.get('limit'), 100) };
}

function limitOf(text: string | null, fallback: number): number {
  if (text === null || text === '') return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_LIST_LIMIT) {
    throw new RequestError(400, `limit: expected a whole number from 1 to ${MAX_LIST_LIMIT}, got "${text}"`);
  }
  return Number(text);
}

function offsetOf(text: string): number {
  if (!/^\d+$/.test(text)) throw new RequestError(400, `offset: expected a byte offset (a whole number), got "${text}"`);
  return Number(text);
}

function voterOf(identity: Identity): string {
  if (identity.credential === 'cookie') return identity.session?.name?.trim() || 'web';
  return 'api';
}

function publicUrlProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch (error) {
    throw new InputError('server publicUrl', `"${url}" is not a URL`, { cause: error });
  }
}

function isHttps(request: IncomingMessage): boolean {
  return (request.socket as { encrypted?: boolean }).encrypted === true || header(request, 'x-forwarded-proto') === 'https';
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
