import { ListWatcher, type KubeClient } from '../kube/index.js';
import type { Logger } from '../log/index.js';
import { watchPath } from './kube.js';
import type { KubeWorkload } from './patch.js';
import { WORKLOAD_KINDS, type WorkloadKind } from './types.js';

export interface WorkloadListener {
  upsert(kind: WorkloadKind, workload: KubeWorkload): void;
  remove(kind: WorkloadKind, workload: KubeWorkload): void;
}

/** Objects per list page: the whole objects of one page are in memory at once, never all of them. */
const LIST_PAGE_SIZE = 500;

/** The metadata the controller acts on; everything else a workload carries is dropped. */
const KEPT_PREFIXES = ['keel.sh/', 'keelson.dev/'];

type Container = { name?: string; image?: string; imagePullPolicy?: string };
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
  // The pull policy decides how a re-pushed tag is rolled (tag, or tag@digest), so it stays.
  return containers?.map((c) => ({ name: c.name, image: c.image, ...(c.imagePullPolicy ? { imagePullPolicy: c.imagePullPolicy } : {}) }));
}

/**
 * The part of a workload the controller decides on while it waits: name, namespace, uid and
 * resourceVersion, the `keel.sh/` and `keelson.dev/` annotations and labels, each container's
 * name, image and pull policy, and the replicas asked for and ready. Status, managed fields, the rest of the pod template and every
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

/**
 * List-and-watch of the four workload kinds, in the given namespaces or cluster-wide, keeping
 * trimmed objects only (trimWorkload). Lists go by pages of 500; a watch the server ends is
 * renewed from its last resourceVersion, 410 Gone lists again, and any other failure (API
 * server down, connection reset) is retried with backoff (ListWatcher).
 */
export class WorkloadDiscovery {
  private readonly watchers: Array<ListWatcher<KubeWorkload>> = [];

  constructor(
    private readonly kube: KubeClient,
    private readonly namespaces: readonly string[],
    private readonly listener: WorkloadListener,
    private readonly logger: Logger,
  ) {}

  /** Resolves once every kind has listed once (or failed to and is retrying). */
  async start(): Promise<void> {
    const scopes: Array<string | undefined> = this.namespaces.length > 0 ? [...this.namespaces] : [undefined];
    for (const kind of WORKLOAD_KINDS) {
      for (const namespace of scopes) {
        this.watchers.push(new ListWatcher<KubeWorkload>({
          client: this.kube,
          path: watchPath(kind, namespace),
          pageSize: LIST_PAGE_SIZE,
          transform: (raw) => trimWorkload(kind, raw as RawWorkload),
          onUpsert: (workload) => this.listener.upsert(kind, workload),
          onRemove: (workload) => this.listener.remove(kind, workload),
          onError: (error, retryInMs) => this.logger.warn({ kind, namespace: namespace ?? '*', err: String(error), retryInMs }, 'workload watch failed, restarting'),
        }));
      }
    }
    await Promise.all(this.watchers.map((w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.watchers.splice(0).map((w) => w.stop()));
  }
}
