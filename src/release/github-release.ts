import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { Duration } from '../domain/index.js';
import { registerSecret, silentLogger, type Logger } from '../log/index.js';
import {
  GITHUB_API_URL, HttpUnreachableError, RetryingHttp, errorDetail, githubHeaders, type HttpAnswer, type RetryPolicy,
} from '../report/index.js';
import { ReleaseError } from './errors.js';
import { GitHubAssetJson, GitHubReleaseJson } from './schema.js';
import type { ReleaseOutcome, ReleasePublisher, ReleaseRequest } from './types.js';

export interface GitHubReleasesOptions {
  readonly token: string;
  /** @default https://api.github.com; `https://ghe.example.com/api/v3` for GitHub Enterprise */
  readonly apiUrl?: string;
  /** @default RETRY_DEFAULTS, with a 5 min timeout per request (assets can be large) */
  readonly retry?: RetryPolicy;
  readonly logger?: Logger;
  readonly dispatcher?: Dispatcher;
  /** @default 'keelson' */
  readonly userAgent?: string;
}

/**
 * GitHub releases, created once per tag: `GET /repos/{o}/{r}/releases/tags/{tag}`; on 404
 * `POST /repos/{o}/{r}/releases`, then each asset to the release's `upload_url`.
 */
export class GitHubReleases implements ReleasePublisher {
  private readonly token: string;
  private readonly apiBase: string;
  private readonly http: RetryingHttp;
  private readonly logger: Logger;
  private readonly userAgent: string;

  constructor(options: GitHubReleasesOptions) {
    this.token = options.token.trim();
    if (!this.token) throw new TypeError('GitHubReleases: the token is empty');
    registerSecret(this.token);
    this.apiBase = (options.apiUrl ?? GITHUB_API_URL).replace(/\/+$/, '');
    new URL(this.apiBase);
    this.logger = options.logger ?? silentLogger();
    this.userAgent = options.userAgent ?? 'keelson';
    this.http = new RetryingHttp({ timeout: Duration.ofSeconds(300), ...options.retry }, this.logger, options.dispatcher);
  }

  async publish(request: ReleaseRequest, signal?: AbortSignal): Promise<ReleaseOutcome> {
    const { repo } = request;
    const [owner, name] = repo.split('/').map(encodeURIComponent) as [string, string];
    const releases = `${this.apiBase}/repos/${owner}/${name}/releases`;

    const existing = await this.call(repo, 'GET', new URL(`${releases}/tags/${encodeURIComponent(request.tag)}`), undefined, signal);
    if (existing.status === 200) return this.unchanged(repo, existing);
    if (existing.status !== 404) throw this.failure(repo, existing, `looking up tag ${request.tag}`);

    const body = JSON.stringify({
      tag_name: request.tag,
      name: request.name ?? request.tag,
      ...(request.notes !== undefined ? { body: request.notes } : {}),
      ...(request.commit !== undefined ? { target_commitish: request.commit } : {}),
    });
    const created = await this.call(repo, 'POST', new URL(releases), { body, contentType: 'application/json' }, signal);
    if (created.status === 422 && /tag_name already_exists/.test(errorDetail(created))) {
      // Another run created it between our GET and POST: it exists, which is all we wanted.
      const raced = await this.call(repo, 'GET', new URL(`${releases}/tags/${encodeURIComponent(request.tag)}`), undefined, signal);
      if (raced.status === 200) return this.unchanged(repo, raced);
    }
    if (created.status !== 201) throw this.failure(repo, created, `creating release ${request.tag}`);
    const release = this.parse(repo, created, GitHubReleaseJson, 'release');
    this.logger.info({ repo, tag: request.tag, release: release.id }, 'release created');

    const uploadBase = this.uploadUrl(repo, release.upload_url);
    const assets: { name: string; url: string }[] = [];
    for (const asset of request.assets) {
      const url = new URL(uploadBase);
      url.searchParams.set('name', asset.name);
      const answer = await this.call(repo, 'POST', url, {
        body: () => createReadStream(asset.path), contentType: asset.contentType, contentLength: asset.size,
      }, signal);
      if (answer.status !== 201) throw this.failure(repo, answer, `uploading asset ${asset.name} to release ${request.tag} (the release exists now; delete it or upload the asset by hand)`);
      assets.push({ name: asset.name, url: this.parse(repo, answer, GitHubAssetJson, 'asset').browser_download_url });
      this.logger.info({ repo, tag: request.tag, asset: asset.name, bytes: asset.size }, 'release asset uploaded');
    }
    return { created: true, htmlUrl: release.html_url, assets };
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private unchanged(repo: string, answer: HttpAnswer): ReleaseOutcome {
    return { created: false, htmlUrl: this.parse(repo, answer, GitHubReleaseJson, 'release').html_url, assets: [] };
  }

  /**
   * The upload URL without its `{?name,label}` template. The token goes only to the API's own
   * origin or, for api.github.com, to uploads.github.com: a release answer pointing elsewhere
   * does not get it.
   */
  private uploadUrl(repo: string, template: string): URL {
    let url: URL;
    try {
      url = new URL(template.replace(/\{[^}]*\}$/, ''));
    } catch {
      throw new ReleaseError(repo, 201, `GitHub sent an upload_url that is not a URL: ${template}`);
    }
    const api = new URL(this.apiBase);
    const allowed = url.origin === api.origin || (api.host === 'api.github.com' && url.origin === 'https://uploads.github.com');
    if (!allowed) throw new ReleaseError(repo, 201, `the release's upload_url points to ${url.origin}, not to ${api.origin}; refusing to send the token there`);
    return url;
  }

  private async call(repo: string, method: 'GET' | 'POST', url: URL,
    payload: { body: string | (() => Readable); contentType: string; contentLength?: number } | undefined,
    signal?: AbortSignal): Promise<HttpAnswer> {
    const { body } = payload ?? {};
    try {
      return await this.http.send({
        method, url,
        headers: {
          ...githubHeaders(this.token, this.userAgent),
          ...(payload ? { 'content-type': payload.contentType } : {}),
          ...(payload?.contentLength !== undefined ? { 'content-length': String(payload.contentLength) } : {}),
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? () => body : body }),
      }, signal);
    } catch (error) {
      if (error instanceof HttpUnreachableError) throw new ReleaseError(repo, undefined, `GitHub API unreachable: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private failure(repo: string, answer: HttpAnswer, doing: string): ReleaseError {
    const detail = errorDetail(answer);
    switch (answer.status) {
      case 401:
        return new ReleaseError(repo, 401, `${doing}: the token was refused (HTTP 401: ${detail}); check --token-file`);
      case 403:
        return new ReleaseError(repo, 403, `${doing}: the token may not do this (HTTP 403: ${detail}); it needs contents:write on ${repo}`);
      case 404:
        return new ReleaseError(repo, 404, `${doing}: repository ${repo} not found, or the token cannot see it (HTTP 404)`);
      case 422:
        return new ReleaseError(repo, 422, `${doing}: GitHub refused the input (HTTP 422: ${detail})`);
      default:
        return new ReleaseError(repo, answer.status, `${doing}: HTTP ${answer.status}: ${detail}${answer.attempts > 1 ? ` (after ${answer.attempts} attempts)` : ''}`);
    }
  }

  private parse<T>(repo: string, answer: HttpAnswer, schema: z.ZodType<T>, what: string): T {
    let raw: unknown;
    try {
      raw = JSON.parse(answer.body.toString('utf8'));
    } catch {
      throw new ReleaseError(repo, answer.status, `GitHub's ${what} answer is not JSON`);
    }
    const result = schema.safeParse(raw);
    if (!result.success) throw new ReleaseError(repo, answer.status, `GitHub's ${what} answer lacks ${result.error.issues.map((i) => i.path.join('.')).join(', ')}`);
    return result.data;
  }
}
