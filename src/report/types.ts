import type { RunRecord } from '../store/index.js';

/** The parts of a run a reporter reads. A full RunRecord fits. */
export type ReportedRun = Pick<RunRecord, 'id' | 'kind' | 'watch' | 'repo' | 'branch' | 'commit' | 'phase' | 'reason' | 'message'>
  & Partial<Pick<RunRecord, 'startedAt' | 'finishedAt' | 'image' | 'exitCode'>>;

/**
 * What one reporter did with one event: posted, failed (with why), or skipped (nothing to report
 * to, e.g. a local repository). Written to the run log and to state `report:<runId>`; a report
 * that failed never fails the run.
 */
export interface ReportResult {
  /** e.g. `github-status`, `gitlab-status`, `webhook`, `slack` */
  readonly reporter: string;
  /** Where it went, without credentials: `api.github.com org/app`, `hooks.slack.com` */
  readonly target: string;
  /** `run.started`, `run.finished`, `rollout.done`, `approval.needed` */
  readonly event: string;
  /** The state posted (`pending`, `success`, `failed`...), for commit statuses */
  readonly state?: string;
  readonly outcome: 'posted' | 'failed' | 'skipped';
  /** Requests made, retries included */
  readonly attempts: number;
  /** The last HTTP status, when there was an answer */
  readonly status?: number;
  /** Why it failed or was skipped */
  readonly detail?: string;
  /** ISO-8601 */
  readonly at: string;
}

/** Tells the outside world about runs: commit statuses on the forge. Never throws. */
export interface RunReporter {
  runStarted(run: ReportedRun): Promise<readonly ReportResult[]>;
  runFinished(run: ReportedRun): Promise<readonly ReportResult[]>;
}

export const NOTIFICATION_EVENTS = ['run.finished', 'rollout.done', 'approval.needed'] as const;
export type NotificationEventKind = (typeof NOTIFICATION_EVENTS)[number];

export interface RunFinishedEvent {
  readonly kind: 'run.finished';
  readonly run: ReportedRun;
}

export interface RolloutDoneEvent {
  readonly kind: 'rollout.done';
  /** `Deployment/namespace/name` */
  readonly workload: string;
  readonly image: string;
  readonly previousImage?: string;
  readonly ok: boolean;
  readonly message?: string;
}

export interface ApprovalNeededEvent {
  readonly kind: 'approval.needed';
  readonly approvalId: string;
  readonly workload: string;
  readonly image: string;
  readonly votesRequired: number;
  /** ISO-8601 */
  readonly deadline?: string;
}

export type NotificationEvent = RunFinishedEvent | RolloutDoneEvent | ApprovalNeededEvent;

/** Sends notifications for the events it is configured for. Never throws. */
export interface Notifier {
  notify(event: NotificationEvent): Promise<readonly ReportResult[]>;
}
