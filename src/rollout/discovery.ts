import { makeInformer, type Informer, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log/index.js';
import { watchPath, WorkloadApi } from './kube.js';
import type { KubeWorkload } from './patch.js';
import { WORKLOAD_KINDS, type WorkloadKind } from './types.js';

export interface WorkloadListener {
  upsert(kind: WorkloadKind, workload: KubeWorkload): void;
  remove(kind: WorkloadKind, workload: KubeWorkload): void;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

/**
 * List-and-watch of the four workload kinds, in the given namespaces or cluster-wide. client-node's
 * ListWatch re-lists by itself when the API server answers 410 Gone (the resourceVersion it
 * watched from was compacted away) and re-watches when the server closes a watch; any other
 * failure (API server down, connection reset) stops it, so it is restarted here with backoff, from
 * its last resourceVersion.
 */
export class WorkloadDiscovery {
  private readonly informers: Array<Informer<KubernetesObject>> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = true;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespaces: readonly string[],
    private readonly listener: WorkloadListener,
    private readonly logger: Logger,
  ) {}

  /** Resolves once every informer has listed once (or failed to and is retrying). */
  async start(): Promise<void> {
    this.stopped = false;
    const api = new WorkloadApi(this.kubeConfig);
    const scopes: Array<string | undefined> = this.namespaces.length > 0 ? [...this.namespaces] : [undefined];
    const starts: Array<Promise<void>> = [];
    for (const kind of WORKLOAD_KINDS) {
      for (const namespace of scopes) {
        const informer = makeInformer<KubernetesObject>(this.kubeConfig, watchPath(kind, namespace), () => api.list(kind, namespace) as never);
        let backoff = MIN_BACKOFF_MS;
        // Objects arriving means the list or watch works again: the next failure starts short.
        informer.on('add', (obj) => { backoff = MIN_BACKOFF_MS; this.listener.upsert(kind, obj as KubeWorkload); });
        informer.on('update', (obj) => { backoff = MIN_BACKOFF_MS; this.listener.upsert(kind, obj as KubeWorkload); });
        informer.on('delete', (obj) => this.listener.remove(kind, obj as KubeWorkload));
        informer.on('error', (error: unknown) => {
          if (this.stopped) return; // stop() aborts the watch, which reports an AbortError
          this.logger.warn({ kind, namespace: namespace ?? '*', err: String(error), retryInMs: backoff }, 'workload watch failed, restarting');
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            if (!this.stopped) void informer.start();
          }, backoff);
          this.timers.add(timer);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        });
        this.informers.push(informer);
        starts.push(informer.start());
      }
    }
    await Promise.all(starts);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.informers.splice(0).map((i) => i.stop()));
  }
}
