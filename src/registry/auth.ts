import type { AuthChallenge } from './http-headers.js';

/** Docker's default when a token response has no `expires_in` (token spec: "defaults to 60"). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

/** `repository:team/app:pull`, the scope a bearer token is asked for. */
export function repositoryScope(repository: string, actions: readonly string[] = ['pull']): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** The challenge we act on: bearer when offered (it is what the server prefers), else basic. */
export function chooseChallenge(challenges: readonly AuthChallenge[]): AuthChallenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ?? challenges.find((c) => c.scheme === 'basic');
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * What we know about each registry's authentication: the challenge it last sent (so later
 * requests authenticate up front instead of collecting a 401 each time) and bearer tokens per
 * (realm, service, scope, user), reused until shortly before they expire.
 */
export class AuthState {
  private readonly challenges = new Map<string, AuthChallenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly now: () => number = Date.now) {}

  challengeFor(registry: string): AuthChallenge | undefined {
    return this.challenges.get(registry);
  }

  rememberChallenge(registry: string, challenge: AuthChallenge): void {
    this.challenges.set(registry, challenge);
  }

  static tokenKey(challenge: AuthChallenge, scope: string | undefined, username: string | undefined): string {
    return JSON.stringify([challenge.params.realm, challenge.params.service ?? '', scope ?? '', username ?? '']);
  }

  cachedToken(key: string): string | undefined {
    const cached = this.tokens.get(key);
    if (!cached) return undefined;
    if (cached.expiresAt <= this.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return cached.token;
  }

  /**
   * Stores a token for `expiresInSeconds` (default 60) less a tenth, so a token is not sent in
   * the last moments of its life and refused on the way.
   */
  storeToken(key: string, token: string, expiresInSeconds: number = DEFAULT_TOKEN_LIFETIME_SECONDS): void {
    this.tokens.set(key, { token, expiresAt: this.now() + expiresInSeconds * 900 });
  }

  forgetToken(key: string): void {
    this.tokens.delete(key);
  }

  /** A cached token, or the one `fetch` brings; concurrent callers for one key share one fetch. */
  async token(key: string, fetch: () => Promise<{ token: string; expiresIn?: number }>): Promise<string> {
    const cached = this.cachedToken(key);
    if (cached) return cached;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = fetch().then(({ token, expiresIn }) => {
        this.storeToken(key, token, expiresIn);
        return token;
      }).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }
}
