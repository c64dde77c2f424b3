import {
  ApiException, AppsV1Api, BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions,
  type KubeConfig, type V1Pod,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { RolloutPatchError } from './errors.js';
import type { KubeWorkload } from './patch.js';
import { workloadKey, type WorkloadKind, type WorkloadRef } from './types.js';

/** The HTTP status of a failed API call (client-node 1.x throws ApiException with `code`). */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const e = error as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The API server's own message out of an ApiException body, for error text. */
export function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as unknown;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return `${error.code}: ${parsed.message}`;
      } catch { /* plain text body */ }
      return `${error.code}: ${body.slice(0, 200)}`;
    }
    const message = (body as { message?: string } | undefined)?.message;
    return message ? `${error.code}: ${message}` : `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface WorkloadList {
  readonly items: KubeWorkload[];
  readonly metadata?: { readonly resourceVersion?: string; readonly _continue?: string };
}

/**
 * The same KubeConfig (it delegates to it), with one keep-alive HTTPS agent per set of TLS
 * options instead of client-node's new agent per request: every API call would otherwise open
 * a new connection with a full TLS handshake (client certificate included), which at a hundred
 * rollouts at once is most of their CPU and latency. Proxied clusters keep client-node's agents.
 */
export function withConnectionReuse(kubeConfig: KubeConfig): KubeConfig {
  const agents = new Map<string, HttpsAgent>();
  const reusing = Object.create(kubeConfig) as KubeConfig;
  const original = (kubeConfig as unknown as { createAgent: (cluster: unknown, options: AgentOptions) => unknown }).createAgent;
  Object.defineProperty(reusing, 'createAgent', {
    value(cluster: { server?: string; proxyUrl?: string } | null, options: AgentOptions) {
      if (!cluster?.server?.startsWith('https:') || cluster.proxyUrl) return original.call(this, cluster, options);
      const { ca, cert, key, pfx, passphrase, rejectUnauthorized } = options;
      const id = createHash('sha256').update(JSON.stringify([cluster.server, ca, cert, key, pfx, passphrase, rejectUnauthorized].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)))).digest('hex');
      let agent = agents.get(id);
      if (!agent) {
        agent = new HttpsAgent({ ...options, keepAlive: true });
        agents.set(id, agent);
      }
      return agent;
    },
  });
  return reusing;
}

/** Where the four kinds are listed and watched. */
export function watchPath(kind: WorkloadKind, namespace?: string): string {
  const group = kind === 'CronJob' ? '/apis/batch/v1' : '/apis/apps/v1';
  const plural = `${kind.toLowerCase()}s`;
  return namespace ? `${group}/namespaces/${namespace}/${plural}` : `${group}/${plural}`;
}

/**
 * Reads and patches the four workload kinds by one interface. Patches go with an explicit
 * Content-Type: client-node 1.4 picks `application/json-patch+json` for every patch call unless
 * the request options override the header (setHeaderOptions + PatchStrategy).
 */
export class WorkloadApi {
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The workload, or undefined when it does not exist (404). */
  async get(ref: WorkloadRef): Promise<KubeWorkload | undefined> {
    const { name, namespace } = ref;
    try {
      switch (ref.kind) {
        case 'Deployment': return await this.apps.readNamespacedDeployment({ name, namespace });
        case 'StatefulSet': return await this.apps.readNamespacedStatefulSet({ name, namespace });
        case 'DaemonSet': return await this.apps.readNamespacedDaemonSet({ name, namespace });
        case 'CronJob': return await this.batch.readNamespacedCronJob({ name, namespace });
      }
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** One page of a list (`limit` objects from `continue`); the whole list when no page is given. */
  async list(kind: WorkloadKind, namespace?: string, page: { limit?: number; continue?: string } = {}): Promise<WorkloadList> {
    const paging = { ...(page.limit ? { limit: page.limit } : {}), ...(page.continue ? { _continue: page.continue } : {}) };
    switch (kind) {
      case 'Deployment': return namespace ? this.apps.listNamespacedDeployment({ namespace, ...paging }) : this.apps.listDeploymentForAllNamespaces(paging);
      case 'StatefulSet': return namespace ? this.apps.listNamespacedStatefulSet({ namespace, ...paging }) : this.apps.listStatefulSetForAllNamespaces(paging);
      case 'DaemonSet': return namespace ? this.apps.listNamespacedDaemonSet({ namespace, ...paging }) : this.apps.listDaemonSetForAllNamespaces(paging);
      case 'CronJob': return namespace ? this.batch.listNamespacedCronJob({ namespace, ...paging }) : this.batch.listCronJobForAllNamespaces(paging);
    }
  }

  async patch(ref: WorkloadRef, body: object, strategy: PatchStrategy = PatchStrategy.StrategicMergePatch): Promise<KubeWorkload> {
    const request = { name: ref.name, namespace: ref.namespace, body, fieldManager: 'keelson' };
    const options = setHeaderOptions('Content-Type', strategy);
    switch (ref.kind) {
      case 'Deployment': return this.apps.patchNamespacedDeployment(request, options);
      case 'StatefulSet': return this.apps.patchNamespacedStatefulSet(request, options);
      case 'DaemonSet': return this.apps.patchNamespacedDaemonSet(request, options);
      case 'CronJob': return this.batch.patchNamespacedCronJob(request, options);
    }
  }

  /**
   * The running pods of a workload (found by its selector, not being deleted). CronJobs have no
   * selector and no long-running pods: none.
   */
  async runningPods(ref: WorkloadRef, workload: KubeWorkload): Promise<V1Pod[]> {
    const selector = workload.spec?.selector;
    if (ref.kind === 'CronJob' || !selector) return [];
    const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
    for (const expr of selector.matchExpressions ?? []) {
      const values = (expr.values ?? []).join(',');
      if (expr.operator === 'In') parts.push(`${expr.key} in (${values})`);
      else if (expr.operator === 'NotIn') parts.push(`${expr.key} notin (${values})`);
      else if (expr.operator === 'Exists') parts.push(expr.key);
      else if (expr.operator === 'DoesNotExist') parts.push(`!${expr.key}`);
    }
    if (parts.length === 0) return [];
    const pods = await this.core.listNamespacedPod({ namespace: ref.namespace, labelSelector: parts.join(',') });
    return pods.items.filter((pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp);
  }

  /** A core/v1 Event on the workload, as `kubectl describe` shows it. Best effort: never throws. */
  async recordEvent(ref: WorkloadRef, workload: KubeWorkload | undefined, reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: ref.namespace,
        body: {
          metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
          involvedObject: {
            apiVersion: ref.kind === 'CronJob' ? 'batch/v1' : 'apps/v1',
            kind: ref.kind,
            name: ref.name,
            namespace: ref.namespace,
            ...(workload?.metadata?.uid ? { uid: workload.metadata.uid } : {}),
            ...(workload?.metadata?.resourceVersion ? { resourceVersion: workload.metadata.resourceVersion } : {}),
          },
          reason,
          message,
          type,
          source: { component: 'keelson' },
          reportingComponent: 'keelson.dev/rollout',
          reportingInstance: 'keelson',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch {
      // An event is a courtesy to the person running kubectl describe; the store has the record.
    }
  }
}

/**
 * Reads the workload, lets `compute` decide on the fresh object, and applies the patch it
 * returns (which must carry the resourceVersion it was computed from). A 409 conflict means
 * someone changed the workload in between: read again and recompute, up to `attempts` times.
 * Returns what compute returned with the patched object, or undefined when compute declined or
 * the workload is gone.
 */
export async function patchOnFreshState<T>(
  api: WorkloadApi,
  ref: WorkloadRef,
  compute: (workload: KubeWorkload) => Promise<{ patch: object; result: T; strategy?: PatchStrategy } | undefined> | { patch: object; result: T; strategy?: PatchStrategy } | undefined,
  attempts = 5,
): Promise<{ result: T; workload: KubeWorkload } | undefined> {
  let lastConflict: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const current = await api.get(ref);
    if (!current) return undefined;
    const decision = await compute(current);
    if (!decision) return undefined;
    try {
      const workload = await api.patch(ref, decision.patch, decision.strategy);
      return { result: decision.result, workload };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      lastConflict = error;
      await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
    }
  }
  throw new RolloutPatchError(workloadKey(ref), `still conflicting after ${attempts} attempts (someone keeps changing it)`, { cause: lastConflict });
}
