import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { StateStore } from '../store/index.js';

/** What the server keeps about one sign-in. */
export interface Session {
  /** ms since the epoch */
  readonly expiresAt: number;
  /** The name given at sign-in, recorded with votes */
  readonly name?: string;
}

const StoredSession = z.object({ expiresAt: z.number(), name: z.string().max(100).optional() });

export interface SessionBookOptions {
  readonly state: StateStore;
  readonly maxAgeMs: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Sign-in sessions: a random id in the cookie, the session in the store's state. Every replica
 * that shares the store (Redis) sees a sign-in and a sign-out at once, and a restart signs no one
 * out. The store holds a digest of the id, never the id itself, so reading the state dir or the
 * Redis keys gives no cookie that works.
 */
export class SessionBook {
  private readonly state: StateStore;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: SessionBookOptions) {
    this.state = options.state;
    this.maxAgeMs = options.maxAgeMs;
    this.now = options.now ?? Date.now;
  }

  /** Starts a session; returns the id to put in the cookie. */
  async create(name?: string): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const session: Session = { expiresAt: this.now() + this.maxAgeMs, ...(name ? { name } : {}) };
    await this.state.setState(keyOf(id), session);
    return id;
  }

  /** The live session of this id; an expired one is removed and is none. */
  async lookup(id: string): Promise<Session | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = keyOf(id);
    const parsed = StoredSession.safeParse(await this.state.getState<unknown>(key));
    if (!parsed.success) return undefined;
    if (parsed.data.expiresAt <= this.now()) {
      await this.state.deleteState(key);
      return undefined;
    }
    return parsed.data;
  }

  /** Ends a session (sign-out); an unknown id is a no-op. */
  async revoke(id: string): Promise<void> {
    if (/^[A-Za-z0-9_-]{43}$/.test(id)) await this.state.deleteState(keyOf(id));
  }
}

function keyOf(id: string): string {
  return `session:${createHash('sha256').update(id).digest('hex')}`;
}
