import { setTimeout as sleep } from 'node:timers/promises';
import { statusOf } from './errors.js';
import { KubeStatus } from './schema.js';
import { KubeApiError } from './errors.js';
import type { KubeClient, WatchEvent } from './types.js';

export interface ListWatchOptions<T> {
  readonly client: KubeClient;
  /** The collection (`/apis/apps/v1/namespaces/x/deployments`) */
  readonly path: string;
  /** What is kept and handed on of each object (a trimmed copy: the cache holds all of them) */
  readonly transform: (raw: unknown) => T;
  readonly onUpsert: (object: T) => void;
  readonly onRemove: (object: T) => void;
  /** A list or watch failed; it is tried again after `retryInMs`. */
  readonly onError: (error: unknown, retryInMs: number) => void;
  /** Objects per list page. @default 500 */
  readonly pageSize?: number;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** Watches are renewed by the server after 5–10 minutes, spread so they do not all end at once. */
const WATCH_MIN_SECONDS = 300;

interface RawMeta { metadata?: { name?: string; namespace?: string; resourceVersion?: string } }

function keyOf(raw: unknown): string | undefined {
  const m = (raw as RawMeta | undefined)?.metadata;
  return m?.name ? `${m.namespace ?? ''}/${m.name}` : undefined;
}

/**
 * List-then-watch of one collection, as client-go's reflector does it: the list goes by pages
 * (only one page of whole objects is in memory at a time), the watch starts from the list's
 * resourceVersion with bookmarks, a watch the server ends is renewed from the last version seen,
 * 410 Gone (that version was compacted away) lists again and tells what changed in between
 * (deletions included), and any other failure is retried with backoff (0.5 s doubling to 30 s).
 */
export class ListWatcher<T> {
  private readonly cache = new Map<string, { version: string | undefined; object: T }>();
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: ListWatchOptions<T>) {}

  /** Resolves once the first list is done, or failed and is being retried. */
  async start(): Promise<void> {
    if (this.running) return;
    const abort = new AbortController();
    this.abort = abort;
    let listed!: () => void;
    const firstList = new Promise<void>((resolve) => { listed = resolve; });
    this.running = this.run(abort.signal, listed);
    await firstList;
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.running;
    this.running = undefined;
  }

  private async run(signal: AbortSignal, listed: () => void): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    let version: string | undefined;
    while (!signal.aborted) {
      try {
        if (version === undefined) {
          version = await this.list(signal);
          listed();
          backoff = MIN_BACKOFF_MS;
        }
        const started = Date.now();
        const result = await this.watch(version, signal);
        version = result.version;
        if (result.events > 0) backoff = MIN_BACKOFF_MS;
        // A server that ends watches at once must not make this a busy loop.
        else if (version !== undefined && Date.now() - started < 1000) await sleep(backoff, undefined, { signal }).catch(() => undefined);
      } catch (error) {
        listed();
        if (signal.aborted) break;
        if (statusOf(error) === 410) {
          version = undefined;
          continue;
        }
        this.options.onError(error, backoff);
        await sleep(backoff, undefined, { signal }).catch(() => undefined);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Lists every page, brings the cache in line with it, and returns the list's resourceVersion. */
  private async list(signal: AbortSignal): Promise<string | undefined> {
    const seen = new Map<string, { version: string | undefined; object: T }>();
    let next: string | undefined;
    let version: string | undefined;
    do {
      const page = await this.options.client.list(this.options.path, { limit: this.options.pageSize ?? 500, continue: next }, (raw) => {
        const key = keyOf(raw);
        if (key) seen.set(key, { version: (raw as RawMeta).metadata?.resourceVersion, object: this.options.transform(raw) });
      });
      if (signal.aborted) return undefined;
      next = page.continue;
      version = page.resourceVersion;
    } while (next);
    for (const [key, entry] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.options.onRemove(entry.object);
      }
    }
    for (const [key, entry] of seen) {
      const known = this.cache.get(key);
      this.cache.set(key, entry);
      if (!known || known.version !== entry.version) this.options.onUpsert(entry.object);
    }
    return version;
  }

  /** One watch; the version to go on from, or undefined when the server said 410 Gone. */
  private async watch(from: string | undefined, signal: AbortSignal): Promise<{ version: string | undefined; events: number }> {
    let version = from;
    let events = 0;
    let failure: KubeApiError | undefined;
    const timeoutSeconds = WATCH_MIN_SECONDS + Math.floor(Math.random() * WATCH_MIN_SECONDS);
    await this.options.client.watch(this.options.path, { resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds }, (event: WatchEvent) => {
      events++;
      const raw = event.object as RawMeta;
      if (event.type === 'ERROR') {
        const status = KubeStatus.safeParse(event.object);
        const code = status.success ? status.data.code ?? 500 : 500;
        failure = new KubeApiError(code, event.object, `watch ${this.options.path}`);
        return;
      }
      const rv = raw?.metadata?.resourceVersion;
      if (rv) version = rv;
      if (event.type === 'BOOKMARK') return;
      const key = keyOf(raw);
      if (!key) return;
      if (event.type === 'DELETED') {
        const known = this.cache.get(key);
        this.cache.delete(key);
        this.options.onRemove(known?.object ?? this.options.transform(raw));
        return;
      }
      if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        const object = this.options.transform(raw);
        this.cache.set(key, { version: rv, object });
        this.options.onUpsert(object);
      }
    }, signal);
    if (failure) throw failure;
    return { version, events };
  }
}
