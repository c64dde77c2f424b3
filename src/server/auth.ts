import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InputError } from '../errors.js';
import { registerSecret } from '../log/index.js';
import { RequestError } from './errors.js';
import { parseCookies } from './http.js';
import type { ServerAuth } from './types.js';

export const TOKEN_COOKIE = 'keelson_token';
export const USER_COOKIE = 'keelson_user';

/** How a request proved itself. */
export type Credential = 'none' | 'bearer' | 'cookie';

/**
 * Bearer tokens for the API, and a cookie for people using the page. The cookie holds an HMAC of
 * the token, never the token itself, so a leaked cookie cannot be replayed as a bearer token.
 */
export class Authenticator {
  private readonly tokenDigest?: Buffer;
  private readonly session?: string;
  readonly readOnlyPublic: boolean;

  constructor(auth: ServerAuth = {}) {
    this.readOnlyPublic = auth.readOnlyPublic ?? true;
    if (auth.token !== undefined) {
      if (auth.token.trim() === '') throw new InputError('server auth.token', 'the API token is empty; give a non-empty token or none');
      registerSecret(auth.token);
      this.tokenDigest = digest(auth.token);
      this.session = createHmac('sha256', auth.token).update('keelson session v1').digest('hex');
      registerSecret(this.session);
    } else if (!this.readOnlyPublic) {
      throw new InputError('server auth', 'readOnlyPublic is false but no token is configured: nobody could read anything');
    }
  }

  /** True when mutating endpoints can be used at all. */
  get writable(): boolean {
    return this.tokenDigest !== undefined;
  }

  /** The cookie value a correct sign-in sets. */
  sessionCookie(): string {
    if (!this.session) throw new RequestError(403, 'signing in is disabled: the server has no API token');
    return this.session;
  }

  /** Compares a token typed into the sign-in form. */
  tokenMatches(token: string): boolean {
    return this.tokenDigest !== undefined && timingSafeEqual(digest(token), this.tokenDigest);
  }

  /**
   * Who the request is. Throws 403 for a wrong bearer token (a wrong cookie counts as none: it is
   * stale after a token rotation and the page offers to sign in again).
   */
  identify(request: IncomingMessage): Credential {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(.+)$/i.exec(header.trim());
      if (!match) throw new RequestError(401, 'expected "Authorization: Bearer TOKEN"');
      if (this.tokenMatches(match[1]!.trim())) return 'bearer';
      throw new RequestError(403, 'wrong API token');
    }
    const cookie = parseCookies(request).get(TOKEN_COOKIE);
    if (cookie !== undefined && this.session !== undefined && cookie.length === this.session.length
      && timingSafeEqual(Buffer.from(cookie), Buffer.from(this.session))) {
      return 'cookie';
    }
    return 'none';
  }

  /** For GET views: passes when read-only access is public or the request is authenticated. */
  authorizeRead(request: IncomingMessage): Credential {
    const credential = this.identify(request);
    if (credential === 'none' && !this.readOnlyPublic) throw new RequestError(401, 'this server needs an API token for every view');
    return credential;
  }

  /** For POSTs that change something. 401 without credentials, 403 with wrong ones or from another site. */
  authorizeWrite(request: IncomingMessage): Credential {
    if (!this.writable) throw new RequestError(403, 'mutating endpoints are disabled: the server has no API token');
    const credential = this.identify(request);
    if (credential === 'none') throw new RequestError(401, 'this endpoint needs an API token (Authorization: Bearer TOKEN, or sign in)');
    // The cookie is SameSite=Strict already; the Origin check also covers old browsers.
    if (credential === 'cookie' && !sameOrigin(request)) throw new RequestError(403, 'cross-site form post refused');
    return credential;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sameOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}
