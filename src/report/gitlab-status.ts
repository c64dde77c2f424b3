import type { RunPhase } from '../store/index.js';
import { CommitStatusReporter, type CommitStatusOptions } from './commit-status.js';
import type { ForgeRepository } from './forge-repository.js';
import type { ReportedRun } from './types.js';

export const GITLAB_API_URL = 'https://gitlab.com/api/v4';

/**
 * GitLab commit statuses (`POST /projects/{url-encoded path}/statuses/{sha}`): `running` when a
 * run starts (GitLab refuses a transition to the state a status already has, so keelson does
 * not post `pending` and then `running`), `success`, `failed` or `canceled` when it ends.
 */
export class GitLabStatusReporter extends CommitStatusReporter {
  protected readonly reporter = 'gitlab-status';

  constructor(options: CommitStatusOptions) {
    super(options, GITLAB_API_URL);
  }

  protected stateFor(phase: RunPhase): string {
    switch (phase) {
      case 'queued': return 'pending';
      case 'running': return 'running';
      case 'succeeded': return 'success';
      case 'failed': return 'failed';
      case 'skipped': case 'interrupted': case 'cancelled': return 'canceled';
    }
  }

  protected projectOf(repository: ForgeRepository): string {
    return repository.path;
  }

  protected statusUrl(project: string, sha: string): URL {
    return new URL(`${this.apiBase}/projects/${encodeURIComponent(project)}/statuses/${sha}`);
  }

  protected headers(): Record<string, string> {
    return { 'private-token': this.token, accept: 'application/json' };
  }

  protected body(state: string, description: string, targetUrl: string | undefined, run: ReportedRun): object {
    return { state, description, name: this.context, ref: run.branch, ...(targetUrl ? { target_url: targetUrl } : {}) };
  }
}
