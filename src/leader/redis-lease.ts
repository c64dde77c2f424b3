import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Duration } from '../domain/index.js';
import { messageOf } from '../errors.js';
import { redactSecrets, silentLogger, type Logger } from '../log/index.js';
import type { LeaderCallbacks, LeaderElection } from './types.js';

export interface RedisLeaseOptions {
  readonly redisUrl: string;
  /** @default 'keelson:leader' */
  readonly key?: string;
  /** How long a lease lasts without renewal: a killed leader is replaced within about this
   * long. @default 10s */
  readonly ttl?: Duration;
  /** Who we are, for logs and the status page. @default hostname-pid-random */
  readonly identity?: string;
  /** Where the other replicas reach this one's HTTP server while it leads (`http://10.1.2.3:8080`). @default none */
  readonly address?: string;
  readonly logger?: Logger;
}

const DEFAULTS = { key: 'keelson:leader', ttl: Duration.ofSeconds(10) };

// Renew or release only our own lease: another replica may hold the key after ours expired.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * Leader election with a Redis lease: `SET key token NX PX ttl`, renewed every third of the TTL
 * by a compare-and-expire script. Each new term takes a fencing number (INCR), so work done
 * under an old term can be told apart. A leader that cannot renew in time steps down before
 * its lease can have expired, so two leaders never work at once.
 */
export class RedisLease implements LeaderElection {
  readonly identity: string;
  private readonly client: Redis;
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly logger: Logger;
  private token: string | undefined;
  private leaseUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private callbacks: LeaderCallbacks | undefined;
  private transition: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly address: string;

  constructor(options: RedisLeaseOptions) {
    this.key = options.key ?? DEFAULTS.key;
    this.ttlMs = (options.ttl ?? DEFAULTS.ttl).milliseconds;
    if (this.ttlMs < 1000) throw new RangeError('leader lease ttl must be at least 1s');
    this.identity = options.identity ?? `${process.env.HOSTNAME ?? 'keelson'}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.address = options.address ?? '';
    this.logger = (options.logger ?? silentLogger()).child({ part: 'leader', identity: this.identity });
    this.client = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: Math.min(this.ttlMs / 3, 5000) });
    this.client.on('error', (error: Error) => this.logger.warn({ error: redactSecrets(error.message) }, 'leader election: redis error'));
  }

  isLeader(): boolean {
    return this.token !== undefined && Date.now() < this.leaseUntil;
  }

  async leaderAddress(): Promise<string | undefined> {
    const value = await this.client.get(this.key);
    const address = value?.slice(value.indexOf(' ') + 1);
    return value?.includes(' ') && address ? address : undefined;
  }

  start(callbacks: LeaderCallbacks): void {
    this.callbacks = callbacks;
    void this.tick();
  }

  /** Steps down (running onStoppedLeading), releases the lease so another replica takes over
   * at once, and disconnects. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.transition;
    if (this.token) {
      const token = this.token;
      await this.stepDown('stopping');
      await this.client.eval(RELEASE, 1, this.key, token).catch(() => undefined);
    }
    this.client.disconnect();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    try {
      if (this.token) {
        const renewed = await this.client.eval(RENEW, 1, this.key, this.token, String(this.ttlMs));
        if (renewed === 1) this.leaseUntil = started + this.ttlMs;
        else await this.stepDown('lease taken over');
      } else {
        // The lease's value says where the leader is, after its random part (which no replica can guess).
        const token = `${randomBytes(16).toString('hex')} ${this.address}`;
        const acquired = await this.client.set(this.key, token, 'PX', this.ttlMs, 'NX');
        if (acquired === 'OK' && !this.stopped) {
          const fence = await this.client.incr(`${this.key}:fence`);
          this.token = token;
          this.leaseUntil = started + this.ttlMs;
          this.logger.info({ fence }, 'became leader');
          // Not awaited: starting the work may take longer than a renewal period.
          void this.run(() => this.callbacks?.onStartedLeading({ fence, identity: this.identity }));
        }
      }
    } catch (error) {
      this.logger.warn({ error: redactSecrets(messageOf(error)) }, 'leader election: cannot reach redis');
    }
    // Could not renew and the lease is about to run out: stop working before another takes over.
    if (this.token && Date.now() > this.leaseUntil - this.ttlMs / 3) await this.stepDown('lease not renewed in time');
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.ttlMs / 3);
      this.timer.unref();
    }
  }

  private async stepDown(why: string): Promise<void> {
    if (!this.token) return;
    this.token = undefined;
    this.leaseUntil = 0;
    this.logger.warn({ why }, 'stopped leading');
    await this.run(() => this.callbacks?.onStoppedLeading());
  }

  private run(work: () => unknown): Promise<void> {
    this.transition = this.transition.then(async () => {
      try {
        await work();
      } catch (error) {
        this.logger.error({ error: messageOf(error) }, 'leader callback failed');
      }
    });
    return this.transition;
  }
}
