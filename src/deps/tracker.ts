import { liveHolders, parseLeaseSet, workloadKey, type KubeWorkload, type WorkloadKind, type WorkloadListener } from '../rollout/index.js';
import { DEPENDENCIES_ANNOTATION, DEPENDENCY_LEASE_ANNOTATION, parseDependencies, type DependencySpec } from './schema.js';

/** A dependency as the status page shows it (src/server's DependencyInfo has this shape). */
export interface DependencyView {
  /** `namespace/kind/name` */
  readonly key: string;
  /** spec.replicas now: 0 while nobody uses it */
  readonly replicas: number;
  readonly readyReplicas: number;
  /** The `keelson ci` runs holding it up now (live leases) */
  readonly holders: readonly string[];
  /** The workloads whose keelson.dev/dependencies name it */
  readonly declaredBy: readonly string[];
}

interface Candidate {
  readonly kind: 'Deployment' | 'StatefulSet';
  readonly namespace: string;
  readonly name: string;
  readonly replicas: number;
  readonly readyReplicas: number;
  readonly leases?: string;
}

/**
 * Follows the dependencies on demand from what the rollout controller's discovery already sees
 * (no API call of its own): every Deployment and StatefulSet that another workload names in
 * keelson.dev/dependencies, or that carries keelson.dev/leases, with its replicas and holders.
 */
export class DependencyTracker implements WorkloadListener {
  private readonly objects = new Map<string, Candidate>();
  /** consumer key -> what it declares, by namespace */
  private readonly declared = new Map<string, { namespace: string; specs: readonly DependencySpec[] }>();

  upsert(kind: WorkloadKind, workload: KubeWorkload): void {
    const name = workload.metadata?.name;
    const namespace = workload.metadata?.namespace;
    if (!name || !namespace) return;
    const key = workloadKey({ kind, namespace, name });
    const declaredText = workload.metadata?.annotations?.[DEPENDENCIES_ANNOTATION];
    if (declaredText === undefined) {
      this.declared.delete(key);
    } else {
      try {
        this.declared.set(key, { namespace, specs: parseDependencies(`${key}: ${DEPENDENCIES_ANNOTATION}`, declaredText) });
      } catch {
        // `keelson ci` reports a bad annotation where it runs; the page just does not list it.
        this.declared.delete(key);
      }
    }
    if (kind !== 'Deployment' && kind !== 'StatefulSet') return;
    const status = (workload as { status?: { readyReplicas?: number } }).status;
    const leases = workload.metadata?.annotations?.[DEPENDENCY_LEASE_ANNOTATION];
    this.objects.set(key, {
      kind, namespace, name, replicas: workload.spec?.replicas ?? 1, readyReplicas: status?.readyReplicas ?? 0, ...(leases !== undefined ? { leases } : {}),
    });
  }

  remove(kind: WorkloadKind, workload: KubeWorkload): void {
    const name = workload.metadata?.name;
    const namespace = workload.metadata?.namespace;
    if (!name || !namespace) return;
    const key = workloadKey({ kind, namespace, name });
    this.objects.delete(key);
    this.declared.delete(key);
  }

  /** The dependencies known now, sorted by key. */
  dependencies(now: Date = new Date()): DependencyView[] {
    const out: DependencyView[] = [];
    for (const [key, object] of this.objects) {
      const declaredBy = [...this.declared].filter(([, d]) => d.namespace === object.namespace
        && d.specs.some((s) => s.name === object.name && (s.kind === undefined || s.kind === object.kind))).map(([consumer]) => consumer).sort();
      if (declaredBy.length === 0 && object.leases === undefined) continue;
      out.push({ key, replicas: object.replicas, readyReplicas: object.readyReplicas, holders: liveHolders(parseLeaseSet(object.leases), now), declaredBy });
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }
}
