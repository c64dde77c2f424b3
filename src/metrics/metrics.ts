import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isTerminal, type RunRecord } from '../store/index.js';
import { PROM_CLIENT_SAMPLE_MS, registerEventLoopLag } from './event-loop.js';

/**
 * keelson's Prometheus metrics, in a registry of our own (not prom-client's global one) so that
 * a library user's metrics never mix with ours. The parts that do the work count it here (the
 * registry watcher its checks, the rollout controller its decisions, the runner its queue);
 * `/metrics` serves the registry. Every metric is listed in the README's metrics table.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'keelson_', eventLoopMonitoringPrecision: PROM_CLIENT_SAMPLE_MS });
registerEventLoopLag(metricsRegistry, 'keelson_');

/** Runs that reached a phase (count once, on the transition). */
export const runsTotal = new Counter({
  name: 'keelson_runs_total',
  help: 'Runs by the final phase they reached',
  labelNames: ['phase', 'kind'] as const,
  registers: [metricsRegistry],
});

/** From start to the terminal phase, by that phase. */
export const runDurationSeconds = new Histogram({
  name: 'keelson_run_duration_seconds',
  help: 'Run duration from start to end, by final phase',
  labelNames: ['phase'] as const,
  buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
  registers: [metricsRegistry],
});

/** Runs created and waiting for a worker (phase `queued`) in this process. */
export const runQueueLength = new Gauge({
  name: 'keelson_run_queue_length',
  help: 'Runs waiting for a worker',
  registers: [metricsRegistry],
});

/** Registry checks of the registry watcher, `result`: ok | error. */
export const registryPollsTotal = new Counter({
  name: 'keelson_registry_polls_total',
  help: 'Registry checks by result',
  labelNames: ['result'] as const,
  registers: [metricsRegistry],
});

/** Scheduled registry checks that started too late to keep their cycle (more requests than the registries' rate allows). */
export const registryCycleOverrunTotal = new Counter({
  name: 'keelson_registry_cycle_overrun_total',
  help: 'Scheduled registry checks that started more than half an interval late (the poll cycle cannot keep up)',
  registers: [metricsRegistry],
});

/** Failed registry checks by kind: see RegistryErrorKind. */
export const registryErrorsTotal = new Counter({
  name: 'keelson_registry_errors_total',
  help: 'Failed registry checks by kind (auth, rate_limited, server, timeout, unreachable, not_found, other)',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
});

/** Rollout decisions, `outcome`: src/rollout's RolloutOutcome (Applied, Held, UpToDate...). */
export const rolloutsTotal = new Counter({
  name: 'keelson_rollouts_total',
  help: 'Rollout decisions by outcome',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

/** Rollouts that should have been applied and were not (patch refused, API down, bad annotations). */
export const rolloutFailuresTotal = new Counter({
  name: 'keelson_rollout_failures_total',
  help: 'Rollouts that failed',
  registers: [metricsRegistry],
});

/** From the registry watcher seeing a new image to the workload patch being applied. */
export const pushToRolloutSeconds = new Histogram({
  name: 'keelson_push_to_rollout_seconds',
  help: 'Time from a pushed image seen in the registry to the workload patch applied',
  buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600],
  registers: [metricsRegistry],
});

/** Approvals open now: not rejected, short of votes, before their deadline. */
export const approvalsPending = new Gauge({
  name: 'keelson_approvals_pending',
  help: 'Rollouts waiting for approval',
  registers: [metricsRegistry],
});

/** Webhook deliveries, `source`: registry | github; `result`: accepted | ignored | bad_request | unauthorized | ... */
export const webhookDeliveriesTotal = new Counter({
  name: 'keelson_webhook_deliveries_total',
  help: 'Webhook deliveries by source and result',
  labelNames: ['source', 'result'] as const,
  registers: [metricsRegistry],
});

/** Counts a run that reached its final phase: the phase counter and, when it started, its duration. */
export function recordRunFinished(run: Pick<RunRecord, 'phase' | 'kind' | 'startedAt' | 'finishedAt'>): void {
  if (!isTerminal(run.phase)) return;
  runsTotal.inc({ phase: run.phase, kind: run.kind });
  if (run.startedAt && run.finishedAt) {
    const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
    if (seconds >= 0) runDurationSeconds.observe({ phase: run.phase }, seconds);
  }
}

export type RegistryErrorKind = 'auth' | 'rate_limited' | 'server' | 'timeout' | 'unreachable' | 'not_found' | 'other';

/**
 * What an operator alerts on, from src/registry's error codes (matched by code, so this folder
 * needs no import of the client): 401/403, 429, 5xx, no answer in time, cannot connect, 404.
 */
export function registryErrorKind(error: unknown): RegistryErrorKind {
  const { code, status, message } = (error ?? {}) as { code?: unknown; status?: unknown; message?: unknown };
  switch (code) {
    case 'KEELSON_REGISTRY_AUTH': return 'auth';
    case 'KEELSON_REGISTRY_RATE_LIMITED': return 'rate_limited';
    case 'KEELSON_REGISTRY_NOT_FOUND': return 'not_found';
    case 'KEELSON_REGISTRY_BAD_RESPONSE': return typeof status === 'number' && status >= 500 ? 'server' : 'other';
    case 'KEELSON_REGISTRY_UNREACHABLE': return /time(d)? ?out/i.test(String(message)) ? 'timeout' : 'unreachable';
    default: return (error as { name?: unknown } | null)?.name === 'TimeoutError' ? 'timeout' : 'other';
  }
}

/** Counts one registry check: `error` absent means it succeeded. `timedOut`: our own deadline fired. */
export function recordRegistryCheck(error?: unknown, timedOut = false): void {
  if (error === undefined) {
    registryPollsTotal.inc({ result: 'ok' });
    return;
  }
  registryPollsTotal.inc({ result: 'error' });
  registryErrorsTotal.inc({ kind: timedOut ? 'timeout' : registryErrorKind(error) });
}
