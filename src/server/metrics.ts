import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isTerminal, type RunRecord } from '../store/index.js';

/**
 * keelson's Prometheus metrics, in a registry of our own (not prom-client's global one) so that
 * a library user's metrics never mix with ours. Other parts import these objects through
 * src/server/index.ts and count what they do; `/metrics` serves the registry.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'keelson_' });

/** Runs that reached a phase (count once, on the transition). */
export const runsTotal = new Counter({
  name: 'keelson_runs_total',
  help: 'Runs by the phase they reached',
  labelNames: ['phase'] as const,
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

/** Registry checks, `result`: ok | error. */
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

/** Rollout decisions, `outcome`: src/rollout's RolloutOutcome (Applied, Held, ...). */
export const rolloutsTotal = new Counter({
  name: 'keelson_rollouts_total',
  help: 'Rollout decisions by outcome',
  labelNames: ['outcome'] as const,
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
export function recordRunFinished(run: Pick<RunRecord, 'phase' | 'startedAt' | 'finishedAt'>): void {
  if (!isTerminal(run.phase)) return;
  runsTotal.inc({ phase: run.phase });
  if (run.startedAt && run.finishedAt) {
    const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
    if (seconds >= 0) runDurationSeconds.observe({ phase: run.phase }, seconds);
  }
}
