import { ListWatch, Watch, type Informer, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
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
/** Objects per list page: the whole objects of one page are in memory at once, never all of them. */
const LIST_PAGE_SIZE = 500;

/** The metadata the controller acts on; everything else a workload carries is dropped. */
const KEPT_PREFIXES = ['keel.sh/', 'keelson.dev/'];

type Container = { name?: string; image?: string };
interface RawWorkload {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    template?: { spec?: { containers?: Container[]; initContainers?: Container[] } };
    jobTemplate?: { spec?: { template?: { spec?: { containers?: Container[]; initContainers?: Container[] } } } };
  };
  status?: { readyReplicas?: number };
}

function keep(map: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!map) return undefined;
  let out: Record<string, string> | undefined;
  for (const key in map) {
    if (KEPT_PREFIXES.some((prefix) => key.startsWith(prefix))) (out ??= {})[key] = map[key]!;
  }
  return out;
}

function images(containers: Container[] | undefined): Container[] | undefined {
  return containers?.map((c) => ({ name: c.name, image: c.image }));
}

/**
 * The part of a workload the controller decides on while it waits: name, namespace, uid and
 * resourceVersion, the `keel.sh/` and `keelson.dev/` annotations and labels, each container's
 * name and image, and the replicas asked for and ready. Status, managed fields, the rest of the pod template and every
 * other annotation (a `last-applied-configuration` alone is the size of the object) are dropped
 * as objects arrive: the informer cache holds ten thousand of these. A rollout reads the whole
 * object fresh from the API server before it decides.
 */
export function trimWorkload(kind: WorkloadKind, workload: RawWorkload): KubeWorkload {
  const m = workload.metadata ?? {};
  const annotations = keep(m.annotations);
  const labels = keep(m.labels);
  const metadata = {
    name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion,
    ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}),
  };
  const pod = kind === 'CronJob' ? workload.spec?.jobTemplate?.spec?.template?.spec : workload.spec?.template?.spec;
  const podSpec = { containers: images(pod?.containers) ?? [], ...(pod?.initContainers ? { initContainers: images(pod.initContainers) } : {}) };
  // Replicas are kept (two numbers) for the status page's dependencies on demand.
  const replicas = workload.spec?.replicas;
  const ready = workload.status?.readyReplicas;
  const spec = kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: podSpec } } } }
    : { ...(replicas !== undefined ? { replicas } : {}), template: { spec: podSpec } };
  return { metadata, spec, ...(ready !== undefined ? { status: { readyReplicas: ready } } : {}) } as KubeWorkload;
}

/** A Watch whose events carry trimmed workloads, for ListWatch (which stores what the watch hands it). */
class TrimmingWatch {
  private readonly inner: Watch;

  constructor(kubeConfig: KubeConfig, private readonly kind: WorkloadKind) {
    this.inner = new Watch(kubeConfig);
  }

  watch(path: string, params: Record<string, string | number | boolean | undefined>, callback: (phase: string, obj: unknown, raw: unknown) => void,
    done: (err: unknown) => void): Promise<AbortController> {
    return this.inner.watch(path, params, (phase, obj) => {
      // ERROR events carry a Status (code 410), not a workload: passed on as they are.
      callback(phase, phase === 'ERROR' || phase === 'BOOKMARK' ? obj : trimWorkload(this.kind, obj as RawWorkload), undefined);
    }, done);
  }
}

/**
 * List-and-watch of the four workload kinds, in the given namespaces or cluster-wide, keeping
 * trimmed objects only (trimWorkload). Lists go by pages of 500. client-node's ListWatch
 * re-lists by itself when the API server answers 410 Gone (the resourceVersion it watched from
 * was compacted away) and re-watches when the server closes a watch; any other failure (API
 * server down, connection reset) stops it, so it is restarted here with backoff, from its last
 * resourceVersion.
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
        const list = async () => {
          const items: KubeWorkload[] = [];
          let page = await api.list(kind, namespace, { limit: LIST_PAGE_SIZE });
          for (;;) {
            for (const item of page.items) items.push(trimWorkload(kind, item as RawWorkload));
            const next = page.metadata?._continue;
            if (!next) break;
            page = await api.list(kind, namespace, { limit: LIST_PAGE_SIZE, continue: next });
          }
          return { items, metadata: { resourceVersion: page.metadata?.resourceVersion } };
        };
        const informer = new ListWatch<KubernetesObject>(watchPath(kind, namespace), new TrimmingWatch(this.kubeConfig, kind) as unknown as Watch,
          list as never, false);
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
