/**
 * The HTTP server of `keelson daemon` and `keelson watch --ui`: /healthz, /readyz, /metrics,
 * registry and GitHub webhooks, the JSON API under /api/ and the server-rendered status page.
 */
export { createServer } from './server.js';
export type {
  ServerOptions, ServerAuth, ServerSources, ServerStore, KeelsonServer, ListeningServer, Readiness, ReadinessReporter,
  WatchSource, WatchInfo, WatchLastRun, RegistrySource, RegistryJobInfo, WorkloadSource, WorkloadInfo, WorkloadImage,
  ApprovalSource, ApprovalInfo, DependencySource, DependencyInfo, GitPushSink, GitPushEvent,
} from './types.js';
export { metricsRegistry, recordRunFinished, registryCycleOverrunTotal } from '../metrics/index.js';
export {
  parseRegistryNotification, pushedRepositories, parseGitHubPush, verifyGitHubSignature, signGitHubBody,
  type RegistryNotification, type RegistryPush, type RegistryFormat,
} from './webhooks.js';
export { ListenError, RequestError } from './errors.js';
export { LeaderView } from './leader-view.js';
export { gitWatcherSources, registryWatcherSource, approvalBookSource, watchesForPush, repositoryIdentity } from './adapters.js';
