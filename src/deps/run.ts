import { Duration } from '../domain/index.js';
import { messageOf } from '../errors.js';
import type { KubeClient } from '../kube/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { HOLD_ANNOTATION, WorkloadApi, workloadKey, type KubeWorkload, type WorkloadRef } from '../rollout/index.js';
import { findService, serviceEnv } from './endpoints.js';
import { DependencyNotFoundError, DependencyTimeoutError } from './errors.js';
import { changeLease } from './leases.js';
import { DEPENDENCIES_ANNOTATION, DEPENDENCY_LEASE_ANNOTATION, parseDependencies, type DependencySpec } from './schema.js';

export interface RunWithDependenciesOptions {
  readonly kube: KubeClient;
  /** Where the workload and its dependencies live */
  readonly namespace: string;
  /** The workload the build runs in: held while the run goes, and where keelson.dev/dependencies is read */
  readonly workload?: WorkloadRef;
  /** Used instead of the workload's keelson.dev/dependencies. @default read from the workload */
  readonly dependencies?: readonly DependencySpec[];
  /** Names this run in the hold and the dependency leases (a run id, a pod name) */
  readonly holderId: string;
  /** How long dependencies may take to be ready. @default 5m */
  readonly readyTimeout?: Duration;
  /** How long a lease lives unless renewed; renewed every third of it while the run goes, so a
   * run killed with -9 lets go after at most this long. @default 10m */
  readonly leaseTtl?: Duration;
  /** How often readiness is looked at. @default 1s */
  readonly pollInterval?: Duration;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Aborts the wait for readiness (SIGTERM during scale-up); the releases still run. */
  readonly signal?: AbortSignal;
  /** Names what is being waited for, for a progress line; cleared before `run` starts. */
  readonly onStage?: (stage: string | undefined) => void;
}

const DEFAULTS = {
  readyTimeout: Duration.parse('5m'),
  leaseTtl: Duration.parse('10m'),
  pollInterval: Duration.parse('1s'),
  now: (): Date => new Date(),
};

interface Resolved {
  readonly spec: DependencySpec;
  readonly ref: WorkloadRef;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `run` with the workload held and its dependencies up:
 * hold the workload -> scale each dependency to its replicas (a lease on the dependency records
 * this run) -> wait until ready -> run(env with each dependency's endpoints) -> release the
 * leases (a dependency goes back to 0 only when no other run holds it) -> release the hold.
 * The releases happen however `run` ends: resolved, thrown, or aborted by the caller.
 */
export async function runWithDependencies<T>(options: RunWithDependenciesOptions, run: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const api = new WorkloadApi(options.kube);
  const log = (options.logger ?? silentLogger()).child({ part: 'deps', holder: options.holderId });
  const now = options.now ?? DEFAULTS.now;
  const ttl = (options.leaseTtl ?? DEFAULTS.leaseTtl).milliseconds;
  const until = (): Date => new Date(now().getTime() + ttl);

  options.signal?.throwIfAborted();
  let own: KubeWorkload | undefined;
  if (options.workload) {
    own = await api.get(options.workload);
    if (!own) throw new DependencyNotFoundError(workloadKey(options.workload), options.namespace);
  }
  const specs = options.dependencies
    ?? parseDependencies(`${options.workload ? workloadKey(options.workload) : options.namespace}: ${DEPENDENCIES_ANNOTATION}`, own?.metadata?.annotations?.[DEPENDENCIES_ANNOTATION] ?? '');
  const resolved = await Promise.all(specs.map((spec) => resolveDependency(api, options.namespace, spec)));

  const held: Array<() => Promise<unknown>> = [];
  const renewals: Array<() => Promise<unknown>> = [];
  let renewTimer: NodeJS.Timeout | undefined;
  try {
    if (options.workload) {
      const workload = options.workload;
      await changeLease(api, workload, HOLD_ANNOTATION, options.holderId, until(), now);
      log.info({ workload: workloadKey(workload) }, 'workload held');
      held.push(() => changeLease(api, workload, HOLD_ANNOTATION, options.holderId, undefined, now));
      renewals.push(() => changeLease(api, workload, HOLD_ANNOTATION, options.holderId, until(), now));
    }
    for (const { spec, ref } of resolved) {
      // Never lower what another run (or a person) set; the leases decide when it goes to 0.
      const up = (_holders: readonly string[], fresh: KubeWorkload): number => Math.max(fresh.spec?.replicas ?? 0, spec.replicas);
      const down = (holders: readonly string[], fresh: KubeWorkload): number | undefined => (holders.length === 0 ? 0 : fresh.spec?.replicas);
      // Registered before the write: if it lands and then we die here, the release still runs.
      held.push(() => changeLease(api, ref, DEPENDENCY_LEASE_ANNOTATION, options.holderId, undefined, now, down));
      const change = await changeLease(api, ref, DEPENDENCY_LEASE_ANNOTATION, options.holderId, until(), now, up);
      log.info({ dependency: spec.name, replicas: change?.replicas, holders: change?.holders }, 'dependency scaled up');
      renewals.push(() => changeLease(api, ref, DEPENDENCY_LEASE_ANNOTATION, options.holderId, until(), now, up));
    }
    renewTimer = setInterval(() => {
      for (const renew of renewals) renew().catch((error: unknown) => log.warn({ err: messageOf(error) }, 'lease renewal failed'));
    }, Math.max(Math.floor(ttl / 3), 1000));

    const env: Record<string, string> = {};
    if (resolved.length > 0) options.onStage?.(`waiting for ${resolved.map((r) => r.spec.name).join(', ')} to be ready`);
    await Promise.all(resolved.map(async ({ spec, ref }) => {
      const ready = await waitReady(api, ref, spec, options.readyTimeout ?? DEFAULTS.readyTimeout, options.pollInterval ?? DEFAULTS.pollInterval, options.signal);
      const service = await findService(api.kube, options.namespace, spec.name, ready);
      if (service) Object.assign(env, serviceEnv(spec.name, service));
      else log.warn({ dependency: spec.name }, 'dependency has no service; no endpoint variables');
    }));
    log.info({ dependencies: resolved.map((r) => r.spec.name) }, 'dependencies ready');
    options.signal?.throwIfAborted();
    options.onStage?.(undefined);
    return await run(env);
  } finally {
    if (renewTimer) clearInterval(renewTimer);
    // Dependencies first (in reverse), the hold last: the workload may roll once it is released.
    const failures: string[] = [];
    for (const release of held.reverse()) {
      try {
        await release();
      } catch (error) {
        failures.push(messageOf(error));
      }
    }
    if (failures.length > 0) log.error({ errors: failures }, 'releasing dependencies or hold failed; leases expire on their own');
    else log.info({ dependencies: resolved.map((r) => r.spec.name) }, 'dependencies released');
  }
}

async function resolveDependency(api: WorkloadApi, namespace: string, spec: DependencySpec): Promise<Resolved> {
  for (const kind of spec.kind ? [spec.kind] : (['Deployment', 'StatefulSet'] as const)) {
    const ref: WorkloadRef = { kind, namespace, name: spec.name };
    if (await api.get(ref)) return { spec, ref };
  }
  throw new DependencyNotFoundError(spec.kind ? `${spec.kind.toLowerCase()}/${spec.name}` : spec.name, namespace);
}

async function waitReady(api: WorkloadApi, ref: WorkloadRef, spec: DependencySpec, timeout: Duration, interval: Duration, signal?: AbortSignal): Promise<KubeWorkload> {
  const deadline = Date.now() + timeout.milliseconds;
  for (;;) {
    signal?.throwIfAborted();
    const current = await api.get(ref);
    if (!current) throw new DependencyNotFoundError(spec.name, ref.namespace);
    const ready = (current as { status?: { readyReplicas?: number } }).status?.readyReplicas ?? 0;
    if (ready >= spec.replicas) return current;
    if (Date.now() >= deadline) throw new DependencyTimeoutError(spec.name, ready, spec.replicas, timeout.toString());
    await sleep(Math.min(interval.milliseconds, Math.max(deadline - Date.now(), 10)));
  }
}
