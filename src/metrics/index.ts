/**
 * keelson's Prometheus metrics: one registry, served by src/server at `/metrics`, counted by the
 * parts that do the work. A leaf folder, so any part may import it without a cycle.
 */
export {
  metricsRegistry, runsTotal, runDurationSeconds, runQueueLength, registryPollsTotal, registryErrorsTotal, registryCycleOverrunTotal, rolloutsTotal,
  rolloutFailuresTotal, pushToRolloutSeconds, approvalsPending, webhookDeliveriesTotal, recordRunFinished, recordRegistryCheck,
  registryErrorKind, type RegistryErrorKind,
} from './metrics.js';
