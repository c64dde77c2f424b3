import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { Duration, untilAborted } from '../domain/index.js';
import { silentLogger, registerSecret, type Logger } from '../log/index.js';
import { AuthState, chooseChallenge, repositoryScope } from './auth.js';
import { anonymousCredentials, usesPlainHttp } from './credentials.js';
import {
  RegistryAuthError, RegistryNotFoundError, RegistryRateLimitedError, RegistryResponseError,
  RegistryUnreachableError, type NotFoundKind, type RegistryErrorContext,
} from './errors.js';
import { parseAuthChallenges, parseNextLink, parseRateLimitNumber, parseRetryAfter, type AuthChallenge } from './http-headers.js';
import { RegistryPacer } from './pacer.js';
import { DOCKER_HUB, DOCKER_HUB_API_HOST, isLoopbackHost, parseImageReference, type RepositoryRef } from './reference.js';
import { RegistryErrors, TagList, TokenResponse } from './schema.js';
import { delay } from './token-bucket.js';
import type { CredentialLookup, Manifest, RateLimitState, RequestOptions } from './types.js';

/** Every manifest type we understand, so the registry never falls back to schema1 conversion. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

export interface RegistryClientOptions {
  /**
   * Credentials and insecure hosts. Like docker, HTTPS is tried first everywhere; a loopback or
   * insecure host falls back to plain HTTP when HTTPS fails, and its certificate is not checked.
   * @default anonymous; loopback hosts insecure
   */
  readonly credentials?: CredentialLookup;
  /** Tags asked for per page (`?n=`). @default 100 */
  readonly pageSize?: number;
  /**
   * The most requests per second per registry host and credential (a token bucket; a 429 halves
   * it for a while, a nearly used-up `ratelimit-remaining` spreads the rest over its window).
   * Enough for 1,500 images polled every 30 s. @default 50
   */
  readonly requestsPerSecond?: number;
  /** Retries after a 429, a 5xx or a dropped connection. @default 3 */
  readonly maxRetries?: number;
  /** Time for a registry to answer one request (connect, headers, body). @default 30s */
  readonly timeout?: Duration;
  /** First backoff delay; doubles per retry (with jitter) when there is no Retry-After. @default 500ms */
  readonly retryDelay?: Duration;
  /** A 429 asking to wait longer than this fails at once with RegistryRateLimitedError. @default 60s */
  readonly maxRetryAfter?: Duration;
  /** @default a silent logger */
  readonly logger?: Logger;
  /** The undici dispatcher to send with; the client closes only one it created. @default a new Agent */
  readonly dispatcher?: Dispatcher;
  /** The dispatcher for HTTPS to loopback and insecure hosts, which skips certificate checks as docker does. @default a new Agent */
  readonly insecureDispatcher?: Dispatcher;
  /** @default 'keelson' */
  readonly userAgent?: string;
}

const DEFAULTS = {
  pageSize: 100,
  requestsPerSecond: 50,
  maxRetries: 3,
  timeout: Duration.ofSeconds(30),
  retryDelay: Duration.ofMilliseconds(500),
  maxRetryAfter: Duration.ofSeconds(60),
  userAgent: 'keelson',
} as const;

const KNOWN_OPTIONS = new Set(['credentials', 'pageSize', 'requestsPerSecond', 'maxRetries', 'timeout', 'retryDelay',
  'maxRetryAfter', 'logger', 'dispatcher', 'insecureDispatcher', 'userAgent']);

/** A repository given as `host/path` text (docker normalisation applies) or already parsed. */
export type RepositoryInput = string | RepositoryRef;

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';

interface Exchange {
  readonly method: Method;
  readonly url: URL;
  readonly accept?: string;
  /** The token scope to ask for (space-separated for several); also selects credentials */
  readonly scope?: string;
  /** Request headers besides user agent, accept and authorization */
  readonly headers?: Readonly<Record<string, string>>;
  /** A Buffer, so that a retry sends it again whole */
  readonly body?: Buffer;
  /** Hand a 2xx answer's body over unread, for blob downloads */
  readonly stream?: boolean;
}

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  /** The unread body of a 2xx answer to a `stream` exchange */
  readonly stream?: Readable;
}

/** What `pushBlob` did: mounted from another repository of the registry, or uploaded. */
export type BlobPushResult = 'mounted' | 'uploaded';

export interface PushBlobOptions extends RequestOptions {
  /** Try a cross-repository mount from this repository of the same registry first. */
  readonly mountFrom?: string;
  /** Blobs larger than this go up in PATCH chunks of this size; smaller ones in one PUT. @default 16 MiB */
  readonly chunkSize?: number;
}

/** Largest blob sent in one request; larger ones go up in chunks of this size. */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

/**
 * Failures mid-exchange that may pass on a second try. Refused, DNS and connect timeouts fail at
 * once: the host is down or wrong, and the caller's next poll is the retry.
 */
const TRANSIENT_NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const RETRIED_STATUSES = new Set([500, 502, 503, 504]);

/**
 * A client for the OCI distribution API. Knows anonymous, basic and bearer-token auth (the
 * WWW-Authenticate challenge flow), paces requests per registry, retries 429/5xx with backoff
 * and turns every failure into a registry error naming the host and repository.
 *
 * Promotion (copying images) will add blob HEAD/GET/upload on top of `exchange`, which already
 * handles auth, pacing and retries for any method.
 */
export class RegistryClient {
  private readonly credentials: CredentialLookup;
  private readonly pageSize: number;
  private readonly requestsPerSecond: number;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly logger: Logger;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private insecureDispatcher?: Dispatcher;
  private readonly ownsInsecureDispatcher: boolean;
  private readonly userAgent: string;
  private readonly auth = new AuthState();
  /** Per `host` + NUL + user name (empty: anonymous) */
  private readonly pacers = new Map<string, RegistryPacer>();
  private readonly rateLimits = new Map<string, RateLimitState>();
  /** The scheme a loopback or insecure host answered on, so the HTTPS probe happens once per host */
  private readonly schemes = new Map<string, 'https:' | 'http:'>();

  constructor(options: RegistryClientOptions = {}) {
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`RegistryClient: unknown option "${key}" (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
    this.credentials = options.credentials ?? anonymousCredentials;
    this.pageSize = positiveInteger('pageSize', options.pageSize ?? DEFAULTS.pageSize);
    this.requestsPerSecond = positiveNumber('requestsPerSecond', options.requestsPerSecond ?? DEFAULTS.requestsPerSecond);
    this.maxRetries = nonNegativeInteger('maxRetries', options.maxRetries ?? DEFAULTS.maxRetries);
    this.timeoutMs = positiveNumber('timeout', (options.timeout ?? DEFAULTS.timeout).milliseconds);
    this.retryDelayMs = (options.retryDelay ?? DEFAULTS.retryDelay).milliseconds;
    this.maxRetryAfterMs = (options.maxRetryAfter ?? DEFAULTS.maxRetryAfter).milliseconds;
    this.logger = options.logger ?? silentLogger();
    this.userAgent = options.userAgent ?? DEFAULTS.userAgent;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: this.timeoutMs } });
    this.ownsInsecureDispatcher = options.insecureDispatcher === undefined;
    this.insecureDispatcher = options.insecureDispatcher;
  }

  /**
   * The digest a tag (or digest) resolves to, by HEAD with the full Accept list: for a
   * multi-platform image that is the index's digest, the image's identity. Falls back to GET and
   * hashing the body only when the registry sends no Docker-Content-Digest.
   */
  async manifestDigest(repository: RepositoryInput, reference: string, options: RequestOptions = {}): Promise<string> {
    const { repo, answer } = await this.manifestExchange('HEAD', repository, reference, options.signal);
    const digest = header(answer.headers, 'docker-content-digest');
    if (digest) return digest;
    return (await this.getManifest(repo, reference, options)).digest;
  }

  /** The manifest's media type, exact bytes and digest. */
  async getManifest(repository: RepositoryInput, reference: string, options: RequestOptions = {}): Promise<Manifest> {
    const { context, answer } = await this.manifestExchange('GET', repository, reference, options.signal);
    const computed = `sha256:${createHash('sha256').update(answer.body).digest('hex')}`;
    // A manifest fetched by sha256 digest must hash to it; anything else is a corrupt answer.
    if (reference.startsWith('sha256:') && reference !== computed) {
      throw new RegistryResponseError(context, answer.status, `manifest ${reference} has content that hashes to ${computed}`);
    }
    const mediaType = header(answer.headers, 'content-type')?.split(';')[0]?.trim() || mediaTypeOf(answer.body);
    if (!mediaType) throw new RegistryResponseError(context, answer.status, `manifest ${reference} has no media type`);
    return { mediaType, body: answer.body, digest: computed };
  }

  /** Whether a blob exists in the repository (HEAD /v2/<name>/blobs/<digest>). */
  async blobExists(repository: RepositoryInput, digest: string, options: RequestOptions = {}): Promise<boolean> {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    const answer = await this.exchange(context, {
      method: 'HEAD', url: this.url(repo, `blobs/${digest}`), scope: repositoryScope(repo.repository),
    }, options.signal);
    if (answer.status === 404) return false;
    this.expectOk(context, answer, `HEAD blob ${digest}`);
    return true;
  }

  /**
   * A blob's content as a stream (GET /v2/<name>/blobs/<digest>). A redirect to another origin
   * (a storage backend's signed URL) is followed without our credentials.
   */
  async getBlob(repository: RepositoryInput, digest: string, options: RequestOptions = {}): Promise<{ size?: number; stream: Readable }> {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    let url = this.url(repo, `blobs/${digest}`);
    for (let redirects = 0; ; redirects++) {
      const answer = await this.exchange(context, { method: 'GET', url, scope: repositoryScope(repo.repository), stream: true }, options.signal);
      const location = header(answer.headers, 'location');
      if ([301, 302, 303, 307, 308].includes(answer.status) && location && redirects < 5) {
        const next = new URL(location, url);
        if (next.origin === url.origin) {
          url = next;
          continue;
        }
        const storage = await this.send('GET', next, { 'user-agent': this.userAgent }, options.signal, { stream: true });
        if (!storage.stream) throw new RegistryResponseError(context, storage.status, `GET blob ${digest} from ${next.origin}: HTTP ${storage.status}`);
        return { ...sizeOf(storage), stream: storage.stream };
      }
      if (answer.status === 404) throw this.notFound(context, answer, 'blob', digest);
      this.expectOk(context, answer, `GET blob ${digest}`);
      return { ...sizeOf(answer), stream: answer.stream! };
    }
  }

  /**
   * Puts a blob into a repository. With `mountFrom`, first asks the registry to mount it from
   * that repository (`POST .../blobs/uploads/?mount=&from=`): 201 means done without a byte sent;
   * 202 opens an ordinary upload. `content` is only called when bytes must be sent: one PUT for
   * blobs up to `chunkSize`, else PATCH chunks and a closing PUT. The digest is checked before the
   * upload is closed.
   */
  async pushBlob(repository: RepositoryInput, digest: string, size: number,
    content: () => Promise<AsyncIterable<Buffer>> | AsyncIterable<Buffer>, options: PushBlobOptions = {}): Promise<BlobPushResult> {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    const chunkSize = positiveInteger('chunkSize', options.chunkSize ?? DEFAULT_CHUNK_SIZE);
    const scope = [repositoryScope(repo.repository, ['pull', 'push']),
      ...(options.mountFrom ? [repositoryScope(options.mountFrom)] : [])].join(' ');
    const start = this.url(repo, 'blobs/uploads/');
    if (options.mountFrom) {
      start.searchParams.set('mount', digest);
      start.searchParams.set('from', options.mountFrom);
    }
    const opened = await this.exchange(context, { method: 'POST', url: start, scope }, options.signal);
    if (opened.status === 201 && options.mountFrom) return 'mounted';
    this.expectStatus(context, opened, 202, `POST blob upload for ${digest}`);
    let location = this.uploadLocation(context, opened, start);

    const hash = createHash('sha256');
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const patch = async (chunk: Buffer) => {
      const answer = await this.exchange(context, {
        method: 'PATCH', url: location, scope, body: chunk,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
      }, options.signal);
      this.expectStatus(context, answer, 202, `PATCH blob ${digest} at ${offset}`);
      location = this.uploadLocation(context, answer, location);
      offset += chunk.length;
    };
    for await (const piece of await content()) {
      hash.update(piece);
      pending.push(piece);
      pendingBytes += piece.length;
      // Small blobs stay whole for one PUT; large ones leave in chunkSize pieces as they arrive.
      while (size > chunkSize && pendingBytes >= chunkSize) {
        const all = Buffer.concat(pending);
        await patch(all.subarray(0, chunkSize));
        pending = [all.subarray(chunkSize)];
        pendingBytes = pending[0]!.length;
      }
    }
    const rest = Buffer.concat(pending);
    const actual = `sha256:${hash.digest('hex')}`;
    if (offset + rest.length !== size || (digest.startsWith('sha256:') && actual !== digest)) {
      throw new RegistryResponseError(context, undefined, `blob ${digest}: the source sent ${offset + rest.length} bytes hashing to ${actual}, expected ${size} bytes`);
    }
    if (size > chunkSize && rest.length > 0) await patch(rest);
    const last = size > chunkSize ? Buffer.alloc(0) : rest;
    location.searchParams.set('digest', digest);
    const closed = await this.exchange(context, {
      method: 'PUT', url: location, scope, body: last, headers: { 'content-type': 'application/octet-stream' },
    }, options.signal);
    this.expectStatus(context, closed, 201, `PUT blob ${digest}`);
    return 'uploaded';
  }

  /**
   * Puts a manifest with its exact bytes and media type (PUT /v2/<name>/manifests/<reference>);
   * resolves to the digest the registry reports, which must equal the bytes' own.
   */
  async putManifest(repository: RepositoryInput, reference: string, manifest: Pick<Manifest, 'mediaType' | 'body'>,
    options: RequestOptions = {}): Promise<string> {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    const answer = await this.exchange(context, {
      method: 'PUT', url: this.url(repo, `manifests/${reference}`), scope: repositoryScope(repo.repository, ['pull', 'push']),
      body: manifest.body, headers: { 'content-type': manifest.mediaType },
    }, options.signal);
    this.expectStatus(context, answer, 201, `PUT manifest ${reference}`);
    const computed = `sha256:${createHash('sha256').update(manifest.body).digest('hex')}`;
    const reported = header(answer.headers, 'docker-content-digest');
    if (reported && reported !== computed) {
      throw new RegistryResponseError(context, answer.status, `PUT manifest ${reference}: the registry stored digest ${reported}, the bytes sent hash to ${computed}`);
    }
    return computed;
  }

  /** The Location of an upload session, resolved; it must stay on the registry's origin. */
  private uploadLocation(context: RegistryErrorContext, answer: Answer, base: URL): URL {
    const location = header(answer.headers, 'location');
    if (!location) throw new RegistryResponseError(context, answer.status, 'blob upload answer has no Location');
    const url = new URL(location, base);
    if (url.origin !== base.origin) {
      throw new RegistryResponseError(context, answer.status, `blob upload continues at another host (${url.host}); refusing to send credentials there`);
    }
    return url;
  }

  /** Every tag of the repository, following `Link: <...>; rel="next"` pages of `pageSize`. */
  async listTags(repository: RepositoryInput, options: RequestOptions = {}): Promise<string[]> {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    const tags: string[] = [];
    let url: URL | undefined = this.url(repo, 'tags/list');
    url.searchParams.set('n', String(this.pageSize));
    const seen = new Set<string>();
    while (url) {
      if (seen.has(url.href)) throw new RegistryResponseError(context, undefined, `tag list pagination loops back to ${url.pathname}${url.search}`);
      seen.add(url.href);
      const answer = await this.exchange(context, { method: 'GET', url, accept: 'application/json', scope: repositoryScope(repo.repository) }, options.signal);
      if (answer.status === 404) throw this.notFound(context, answer, 'repository', undefined);
      this.expectOk(context, answer, 'GET tag list');
      tags.push(...this.parseJson(context, answer, TagList, 'tag list').tags);
      const next = parseNextLink(answer.headers.link, url);
      if (next && next.origin !== url.origin) {
        throw new RegistryResponseError(context, answer.status, `tag list links to another host (${next.host}); refusing to send credentials there`);
      }
      url = next;
    }
    return tags;
  }

  /** The last `ratelimit-limit` / `ratelimit-remaining` the registry sent, if it sends them. */
  rateLimit(registry: string): RateLimitState | undefined {
    return this.rateLimits.get(registry);
  }

  /** Closes connections (only of a dispatcher the client created). */
  async close(): Promise<void> {
    const owned = [this.ownsDispatcher ? this.dispatcher : undefined, this.ownsInsecureDispatcher ? this.insecureDispatcher : undefined]
      .filter((d): d is Dispatcher => d !== undefined);
    await Promise.all(owned.map((dispatcher) => closeWithin(dispatcher, CLOSE_GRACE_MS)));
  }

  /** The scheme a loopback or insecure host was found to speak (`https:`/`http:`), once known. */
  schemeOf(registry: string): 'https:' | 'http:' | undefined {
    return this.schemes.get(registry);
  }

  // ---- the exchange: pacing, auth, retries

  private async manifestExchange(method: 'GET' | 'HEAD', repository: RepositoryInput, reference: string, signal?: AbortSignal) {
    const repo = toRepositoryRef(repository);
    const context = { registry: repo.registry, repository: repo.repository };
    const answer = await this.exchange(context, {
      method, url: this.url(repo, `manifests/${reference}`), accept: MANIFEST_MEDIA_TYPES.join(', '),
      scope: repositoryScope(repo.repository),
    }, signal);
    if (answer.status === 404) throw this.notFound(context, answer, 'repository or tag', reference);
    this.expectOk(context, answer, `${method} manifest ${reference}`);
    return { repo, context, answer };
  }

  private url(repo: RepositoryRef, path: string): URL {
    const apiHost = repo.registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : repo.registry;
    return new URL(`${this.schemes.get(repo.registry) ?? 'https:'}//${apiHost}/v2/${repo.repository}/${path}`);
  }

  private pacer(context: RegistryErrorContext): RegistryPacer {
    const username = this.credentials.credentialsFor(context.registry, context.repository ?? '')?.username ?? '';
    const key = `${context.registry}\u0000${username}`;
    let pacer = this.pacers.get(key);
    if (!pacer) {
      pacer = new RegistryPacer({ maxRate: this.requestsPerSecond });
      this.pacers.set(key, pacer);
    }
    return pacer;
  }

  /** Loopback hosts (as docker treats them) and hosts marked insecure: HTTP when HTTPS fails, no certificate check. */
  private insecure(registry: string): boolean {
    return usesPlainHttp(registry, this.credentials);
  }

  /**
   * One request with everything around it. Resolves with any status that is the caller's to
   * judge (2xx, 404, other 4xx); throws for auth failures, exhausted retries and network errors.
   */
  private async exchange(context: RegistryErrorContext, exchange: Exchange, signal?: AbortSignal): Promise<Answer> {
    const log = this.logger.child({ registry: context.registry, repository: context.repository });
    let retries = 0;
    let authRetried = false;
    const pacer = this.pacer(context);
    const url = new URL(exchange.url);
    const known = this.schemes.get(context.registry);
    if (known) url.protocol = known; // a page link or upload location resolved against the probe's scheme
    for (;;) {
      const paused = pacer.pausedFor();
      if (paused > this.maxRetryAfterMs) throw new RegistryRateLimitedError(context, paused);
      await pacer.take(signal);
      const authorization = await this.authorization(context, exchange.scope, signal);
      let answer: Answer;
      try {
        answer = await this.send(exchange.method, url, {
          ...exchange.headers,
          'user-agent': this.userAgent,
          ...(exchange.accept ? { accept: exchange.accept } : {}),
          ...(authorization ? { authorization } : {}),
        }, signal, { ...(exchange.body ? { body: exchange.body } : {}), ...(exchange.stream ? { stream: true } : {}) });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (url.protocol === 'https:' && this.schemes.get(context.registry) !== 'https:' && this.insecure(context.registry)) {
          // As docker does for insecure and loopback registries: HTTPS failed, so plain HTTP. A
          // request sent in parallel may have learned the scheme while this one was probing.
          log.debug({ err: describeNetworkError(error) }, 'no HTTPS on an insecure registry, trying plain HTTP');
          url.protocol = 'http:';
          continue;
        }
        const code = networkCode(error);
        if (code && TRANSIENT_NETWORK_CODES.has(code) && retries < this.maxRetries) {
          log.debug({ code, retry: retries + 1 }, 'registry request failed, retrying');
          await delay(this.backoff(retries++), signal);
          continue;
        }
        throw new RegistryUnreachableError(context, `${exchange.method} ${url.origin}: ${describeNetworkError(error)}`, { cause: error });
      }
      if (this.insecure(context.registry) && !this.schemes.has(context.registry)) {
        this.schemes.set(context.registry, url.protocol === 'http:' ? 'http:' : 'https:');
        log.debug({ scheme: url.protocol }, 'insecure registry answers on this scheme');
      }
      this.recordRateLimit(context.registry, answer);
      const pace = pacer.observe(answer.status, answer.headers);
      if (pace.slowedDown) log.warn({ status: answer.status, requestsPerSecond: Number(pace.rate.toFixed(3)), pausedForMs: pacer.pausedFor() }, 'registry asks to slow down; pacing requests to it');

      if (answer.status === 401) {
        const challenge = chooseChallenge(parseAuthChallenges(answer.headers['www-authenticate']));
        const credentials = this.credentials.credentialsFor(context.registry, context.repository ?? '');
        if (!challenge) {
          throw new RegistryAuthError(context, 401, `the registry sent no usable WWW-Authenticate challenge (${this.errorDetail(answer)})`);
        }
        if (challenge.scheme === 'basic' && !credentials) {
          throw new RegistryAuthError(context, 401, 'the registry requires credentials and none are configured for it; add them to the registry config, docker config.json or a pull secret');
        }
        // Basic credentials we already sent were refused: asking again with the same ones is pointless.
        if (!authRetried && !(challenge.scheme === 'basic' && authorization?.startsWith('Basic '))) {
          // The first 401 teaches us the scheme; a cached token may also have been revoked.
          this.auth.rememberChallenge(context.registry, challenge);
          if (challenge.scheme === 'bearer') this.auth.forgetToken(AuthState.tokenKey(challenge, exchange.scope, credentials?.username));
          authRetried = true;
          continue;
        }
        if (challenge.params.error === 'insufficient_scope') {
          // Docker Hub says this for a repository that does not exist, too.
          throw new RegistryAuthError(context, 401, `${credentials ? `user "${credentials.username}"` : 'anonymous access'} does not grant ${exchange.scope ?? 'this request'} (insufficient_scope)` +
            `; check the repository name${credentials ? ' and the user\'s access' : ', or configure credentials for this registry'}`);
        }
        throw new RegistryAuthError(context, 401, credentials
          ? `the credentials for user "${credentials.username}" were refused`
          : `anonymous access was refused${challenge.params.error ? ` (${challenge.params.error})` : ''}; configure credentials for this registry`);
      }
      if (answer.status === 403) throw new RegistryAuthError(context, 403, this.errorDetail(answer));

      if (answer.status === 429) {
        const retryAfter = parseRetryAfter(answer.headers['retry-after']);
        if (retries >= this.maxRetries || (retryAfter !== undefined && retryAfter > this.maxRetryAfterMs)) {
          throw new RegistryRateLimitedError(context, retryAfter);
        }
        log.debug({ retryAfterMs: retryAfter, retry: retries + 1 }, 'registry rate limited, waiting');
        // The pacer waits out the Retry-After for every request to this registry, this one too.
        if (retryAfter === undefined) await delay(this.backoff(retries), signal);
        retries++;
        continue;
      }
      if (RETRIED_STATUSES.has(answer.status)) {
        if (retries >= this.maxRetries) {
          throw new RegistryResponseError(context, answer.status, `server error after ${retries + 1} attempts: ${this.errorDetail(answer)}`);
        }
        const retryAfter = parseRetryAfter(answer.headers['retry-after']);
        log.debug({ status: answer.status, retry: retries + 1 }, 'registry server error, retrying');
        await delay(Math.min(retryAfter ?? this.backoff(retries), this.maxRetryAfterMs), signal);
        retries++;
        continue;
      }
      return answer;
    }
  }

  /** The Authorization header for a request, per the challenge the registry sent before. */
  private async authorization(context: RegistryErrorContext, scope: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.auth.challengeFor(context.registry);
    if (!challenge) return undefined;
    const credentials = this.credentials.credentialsFor(context.registry, context.repository ?? '');
    if (credentials) registerSecret(credentials.password);
    if (challenge.scheme === 'basic') {
      return credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    }
    const effectiveScope = scope ?? challenge.params.scope;
    const key = AuthState.tokenKey(challenge, effectiveScope, credentials?.username);
    const token = await this.auth.token(key, () => this.fetchToken(context, challenge, effectiveScope, credentials, signal));
    return `Bearer ${token}`;
  }

  /** GET realm?service=&scope= (token spec), with basic credentials when we have them. */
  private async fetchToken(context: RegistryErrorContext, challenge: AuthChallenge, scope: string | undefined,
    credentials: { username: string; password: string } | undefined, signal?: AbortSignal): Promise<{ token: string; expiresIn?: number }> {
    let url: URL;
    try {
      url = new URL(challenge.params.realm!);
    } catch {
      throw new RegistryResponseError(context, 401, `the token realm "${challenge.params.realm}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RegistryResponseError(context, 401, `the token realm "${url.href}" is not http(s)`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    // Several scopes (push here, pull from a mount's source) are several `scope` parameters.
    for (const one of scope?.split(' ').filter(Boolean) ?? []) url.searchParams.append('scope', one);
    if (credentials) url.searchParams.set('account', credentials.username);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    let answer: Answer;
    try {
      answer = await this.send('GET', url, headers, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new RegistryUnreachableError(context, `token server ${url.origin}: ${describeNetworkError(error)}`, { cause: error });
    }
    if (answer.status === 401 || answer.status === 403) {
      throw new RegistryAuthError(context, answer.status, `the token server ${url.origin} refused ${credentials ? `the credentials for user "${credentials.username}"` : 'anonymous access'}`);
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new RegistryResponseError(context, answer.status, `token server ${url.origin}: ${this.errorDetail(answer)}`);
    }
    const parsed = this.parseJson(context, answer, TokenResponse, `token from ${url.origin}`);
    const token = (parsed.token ?? parsed.access_token)!;
    registerSecret(token);
    return { token, ...(parsed.expires_in === undefined ? {} : { expiresIn: parsed.expires_in }) };
  }

  private async send(method: Method, url: URL, headers: Record<string, string>, signal?: AbortSignal,
    extra: { body?: Buffer; stream?: boolean } = {}): Promise<Answer> {
    const response = await untilAborted(request(url, {
      method, headers, dispatcher: this.dispatcherFor(url), headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs,
      ...(extra.body ? { body: extra.body } : {}),
      ...(signal ? { signal } : {}),
    }), signal, (late) => late.body.dump().catch(() => undefined));
    if (extra.stream && response.statusCode >= 200 && response.statusCode <= 299) {
      return { status: response.statusCode, headers: response.headers, body: Buffer.alloc(0), stream: response.body };
    }
    const body = method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await response.body.arrayBuffer());
    if (method === 'HEAD') await response.body.dump();
    return { status: response.statusCode, headers: response.headers, body };
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (url.protocol !== 'https:' || !this.insecure(url.host)) return this.dispatcher;
    this.insecureDispatcher ??= new Agent({ connect: { timeout: this.timeoutMs, rejectUnauthorized: false } });
    return this.insecureDispatcher;
  }

  private backoff(retry: number): number {
    const base = this.retryDelayMs * 2 ** retry;
    return Math.min(this.maxRetryAfterMs, base / 2 + Math.random() * (base / 2));
  }

  private recordRateLimit(registry: string, answer: Answer): void {
    const limit = parseRateLimitNumber(answer.headers['ratelimit-limit']);
    const remaining = parseRateLimitNumber(answer.headers['ratelimit-remaining']);
    if (limit === undefined && remaining === undefined) return;
    this.rateLimits.set(registry, { ...(limit === undefined ? {} : { limit }), ...(remaining === undefined ? {} : { remaining }), observedAt: Date.now() });
    if (remaining !== undefined && limit !== undefined && remaining < limit / 10) {
      this.logger.warn({ registry, limit, remaining }, 'registry rate limit nearly used up');
    }
  }

  private expectOk(context: RegistryErrorContext, answer: Answer, what: string): void {
    if (answer.status >= 200 && answer.status <= 299) return;
    throw new RegistryResponseError(context, answer.status, `${what}: ${this.errorDetail(answer)}`);
  }

  /** Upload steps answer with one exact status (202 to go on, 201 when done); anything else is an error. */
  private expectStatus(context: RegistryErrorContext, answer: Answer, expected: number, what: string): void {
    if (answer.status === expected) return;
    if (answer.status === 404) throw this.notFound(context, answer, 'repository', undefined);
    throw new RegistryResponseError(context, answer.status, `${what}: ${this.errorDetail(answer)}`);
  }

  private notFound(context: RegistryErrorContext, answer: Answer, fallback: NotFoundKind, reference: string | undefined): RegistryNotFoundError {
    const errors = this.registryErrors(answer);
    const code = errors[0]?.code;
    const kind: NotFoundKind = code === 'NAME_UNKNOWN' ? 'repository' : code === 'MANIFEST_UNKNOWN' ? 'manifest'
      : code === 'BLOB_UNKNOWN' ? 'blob' : fallback;
    const detail = errors[0]?.message ?? (kind === 'repository or tag'
      ? `no tag or digest "${reference}" in ${context.registry}/${context.repository}, or no such repository`
      : 'the registry answered 404');
    return new RegistryNotFoundError(context, kind, kind === 'repository' ? undefined : reference, detail);
  }

  private registryErrors(answer: Answer): RegistryErrors['errors'] {
    if (answer.body.length === 0) return [];
    try {
      const parsed = RegistryErrors.safeParse(JSON.parse(answer.body.toString('utf8')));
      return parsed.success ? parsed.data.errors : [];
    } catch {
      return [];
    }
  }

  /** The registry's own error text when it sent one, else the status line. */
  private errorDetail(answer: Answer): string {
    const errors = this.registryErrors(answer);
    if (errors.length > 0) return errors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}`).join('; ');
    const text = answer.body.toString('utf8').trim();
    return text && text.length < 200 && !text.includes('<') ? text : `HTTP ${answer.status}`;
  }

  private parseJson<T>(context: RegistryErrorContext, answer: Answer, schema: z.ZodType<T>, what: string): T {
    let raw: unknown;
    try {
      raw = JSON.parse(answer.body.toString('utf8'));
    } catch (error) {
      throw new RegistryResponseError(context, answer.status, `${what} is not JSON`, { cause: error });
    }
    const result = schema.safeParse(raw);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    throw new RegistryResponseError(context, answer.status, `${what} is malformed: ${issue ? `${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}` : 'unexpected shape'}`);
  }
}

function toRepositoryRef(input: RepositoryInput): RepositoryRef {
  if (typeof input !== 'string') return input;
  const { registry, repository } = parseImageReference(input);
  return { registry, repository };
}

function sizeOf(answer: Answer): { size?: number } {
  const length = Number(header(answer.headers, 'content-length'));
  return Number.isInteger(length) && length >= 0 ? { size: length } : {};
}

function header(headers: Answer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The `mediaType` field of a manifest body, for registries that send no Content-Type. */
function mediaTypeOf(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: unknown };
    return typeof parsed.mediaType === 'string' ? parsed.mediaType : undefined;
  } catch {
    return undefined;
  }
}

/** The `code` of a network error or of one of its causes (undici wraps them). */
export function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describeNetworkError(error: unknown): string {
  const code = networkCode(error);
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': return 'host name not found (DNS)';
    case 'EAI_AGAIN': return 'host name lookup failed temporarily (DNS)';
    case 'UND_ERR_CONNECT_TIMEOUT': return 'connect timed out';
    case 'UND_ERR_HEADERS_TIMEOUT': case 'UND_ERR_BODY_TIMEOUT': case 'ETIMEDOUT': return 'timed out waiting for an answer';
    case 'ECONNRESET': case 'UND_ERR_SOCKET': return 'connection closed by the server';
    case 'EPROTO': case 'ERR_SSL_WRONG_VERSION_NUMBER': return 'TLS handshake failed (is it plain HTTP? mark it tls.client.disabled in the registry config)';
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return code ? `${message} (${code})` : message;
    }
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`RegistryClient: ${name} must be a whole number >= 1, got ${value}`);
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`RegistryClient: ${name} must be a whole number >= 0, got ${value}`);
  return value;
}

function positiveNumber(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`RegistryClient: ${name} must be > 0, got ${value}`);
  return value;
}

/**
 * How long close() lets requests in flight finish. A request whose caller gave up (its signal
 * aborted) may still hang in a TLS handshake until the connect timeout; close() does not wait for it.
 */
const CLOSE_GRACE_MS = 1_000;

async function closeWithin(dispatcher: Dispatcher, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = dispatcher.close().then(() => true);
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); });
  const inTime = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (!inTime) await dispatcher.destroy();
}
