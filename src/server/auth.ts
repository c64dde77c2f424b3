import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InputError } from '../errors.js';
import { registerSecret } from '../log/index.js';
import type { StateStore } from '../store/index.js';
import { RequestError } from './errors.js';
import { parseCookies } from './http.js';
import { SessionBook, type Session } from './sessions.js';
import type { ServerAuth } from './types.js';

export const SESSION_COOKIE = 'keelson_session';
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** How a request proved itself. */
export type Credential = 'none' | 'bearer' | 'cookie';

export interface Identity {
  readonly credential: Credential;
  /** The session behind a cookie credential */
  readonly session?: Session;
}

const NOBODY: Identity = { credential: 'none' };

/**
 * Bearer tokens for the API, and a session cookie for people using the page. The cookie holds a
 * random session id (never the token, nor anything derived from it), so signing out revokes it
 * and a leaked cookie cannot be replayed as a bearer token.
 */
export class Authenticator {
  private readonly tokenDigest?: Buffer;
  private readonly sessions: SessionBook;
  readonly readOnlyPublic: boolean;
  readonly sessionMaxAgeMs: number;

  constructor(auth: ServerAuth = {}, state: StateStore) {
    this.readOnlyPublic = auth.readOnlyPublic ?? true;
    this.sessionMaxAgeMs = auth.sessionMaxAgeMs ?? SESSION_MAX_AGE_MS;
    if (!(this.sessionMaxAgeMs >= 1000)) throw new InputError('server auth.sessionMaxAgeMs', 'must be at least 1000 (one second)');
    this.sessions = new SessionBook({ state, maxAgeMs: this.sessionMaxAgeMs });
    if (auth.token !== undefined) {
      if (auth.token.trim() === '') throw new InputError('server auth.token', 'the API token is empty; give a non-empty token or none');
      registerSecret(auth.token);
      this.tokenDigest = digest(auth.token);
    } else if (!this.readOnlyPublic) {
      throw new InputError('server auth', 'readOnlyPublic is false but no token is configured: nobody could read anything');
    }
  }

  /** True when mutating endpoints can be used at all. */
  get writable(): boolean {
    return this.tokenDigest !== undefined;
  }

  /** Starts a session after a correct sign-in; returns the cookie value. */
  signIn(name: string | undefined): Promise<string> {
    if (!this.writable) throw new RequestError(403, 'signing in is disabled: the server has no API token');
    return this.sessions.create(name);
  }

  /** Revokes the session of the request's cookie, if any. */
  async signOut(request: IncomingMessage): Promise<void> {
    const id = parseCookies(request).get(SESSION_COOKIE);
    if (id !== undefined) await this.sessions.revoke(id);
  }

  /** Compares a token typed into the sign-in form. */
  tokenMatches(token: string): boolean {
    return this.tokenDigest !== undefined && timingSafeEqual(digest(token), this.tokenDigest);
  }

  /**
   * Who the request is. Throws 403 for a wrong bearer token (an unknown or expired session counts
   * as none: the page offers to sign in again).
   */
  async identify(request: IncomingMessage): Promise<Identity> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(.+)$/i.exec(header.trim());
      if (!match) throw new RequestError(401, 'expected "Authorization: Bearer TOKEN"');
      if (this.tokenMatches(match[1]!.trim())) return { credential: 'bearer' };
      throw new RequestError(403, 'wrong API token');
    }
    const id = parseCookies(request).get(SESSION_COOKIE);
    if (id === undefined || !this.writable) return NOBODY;
    const session = await this.sessions.lookup(id);
    return session ? { credential: 'cookie', session } : NOBODY;
  }

  /** For GET views: passes when read-only access is public or the request is authenticated. */
  async authorizeRead(request: IncomingMessage): Promise<Identity> {
    const identity = await this.identify(request);
    if (identity.credential === 'none' && !this.readOnlyPublic) throw new RequestError(401, 'this server needs an API token for every view');
    return identity;
  }

  /** For POSTs that change something. 401 without credentials, 403 with wrong ones or from another site. */
  async authorizeWrite(request: IncomingMessage): Promise<Identity> {
    if (!this.writable) throw new RequestError(403, 'mutating endpoints are disabled: the server has no API token');
    const identity = await this.identify(request);
    if (identity.credential === 'none') throw new RequestError(401, 'this endpoint needs an API token (Authorization: Bearer TOKEN, or sign in)');
    // The cookie is SameSite=Strict already; the Origin check also covers old browsers.
    if (identity.credential === 'cookie' && !sameOrigin(request)) throw new RequestError(403, 'cross-site form post refused');
    return identity;
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
