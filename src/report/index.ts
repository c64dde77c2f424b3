/**
 * Reporting a pipeline's work to the outside: commit statuses on GitHub and GitLab, and
 * notifications (generic JSON webhook, Slack-compatible). Nothing here ever fails a run: each
 * call returns what it did, for the run log (`recordReport`).
 */
export type {
  RunReporter, Notifier, ReportResult, ReportedRun, NotificationEvent, NotificationEventKind,
  RunFinishedEvent, RolloutDoneEvent, ApprovalNeededEvent,
} from './types.js';
export { NOTIFICATION_EVENTS } from './types.js';
export { ReportConfig, StatusTarget, NotificationTarget } from './schema.js';
export { createReporters, readTokenFile, CompositeReporters, type Reporters, type CreateReportersOptions } from './reporters.js';
export { CommitStatusReporter, describeRun, MAX_DESCRIPTION, type CommitStatusOptions } from './commit-status.js';
export { GitHubStatusReporter, GITHUB_API_URL, GITHUB_API_VERSION, githubHeaders } from './github-status.js';
export { GitLabStatusReporter, GITLAB_API_URL } from './gitlab-status.js';
export { WebhookNotifier, type WebhookNotifierOptions } from './webhook-notifier.js';
export { SlackNotifier } from './slack-notifier.js';
export { recordReport, reportStateKey, reportLogLine } from './record.js';
export { parseForgeRepository, githubOwnerRepo, type ForgeRepository } from './forge-repository.js';
export {
  RetryingHttp, HttpUnreachableError, retryWait, errorDetail, RETRY_DEFAULTS,
  type HttpCall, type HttpAnswer, type RetryPolicy,
} from './http.js';
