import type { RunPhase } from '../store/index.js';
import { CommitStatusReporter, type CommitStatusOptions } from './commit-status.js';
import { githubOwnerRepo, type ForgeRepository } from './forge-repository.js';
import type { ReportedRun } from './types.js';

export const GITHUB_API_URL = 'https://api.github.com';
/** The REST API version keelson is written against (GitHub's `X-GitHub-Api-Version`). */
export const GITHUB_API_VERSION = '2022-11-28';

/** The headers every GitHub REST call carries. */
export function githubHeaders(token: string, userAgent: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': GITHUB_API_VERSION,
    'user-agent': userAgent,
  };
}

/**
 * GitHub commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`): `pending` when a run
 * starts, `success`, `failure` or `error` when it ends, linked to the run's page.
 */
export class GitHubStatusReporter extends CommitStatusReporter {
  protected readonly reporter = 'github-status';

  constructor(options: CommitStatusOptions) {
    super(options, GITHUB_API_URL);
  }

  protected stateFor(phase: RunPhase): string {
    switch (phase) {
      case 'queued': case 'running': return 'pending';
      case 'succeeded': return 'success';
      case 'failed': return 'failure';
      // not the code's fault: the run did not get to say
      case 'skipped': case 'interrupted': case 'cancelled': return 'error';
    }
  }

  protected projectOf(repository: ForgeRepository): string | { skip: string } {
    const parsed = githubOwnerRepo(repository.path);
    return parsed ? `${parsed.owner}/${parsed.repo}` : { skip: `"${repository.path}" is not a GitHub owner/name` };
  }

  protected statusUrl(project: string, sha: string): URL {
    const [owner, repo] = project.split('/') as [string, string];
    return new URL(`${this.apiBase}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/statuses/${sha}`);
  }

  protected headers(): Record<string, string> {
    return githubHeaders(this.token, this.userAgent);
  }

  protected body(state: string, description: string, targetUrl: string | undefined, _run: ReportedRun): object {
    return { state, description, context: this.context, ...(targetUrl ? { target_url: targetUrl } : {}) };
  }
}
