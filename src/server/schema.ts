import { z } from 'zod';

/*
 * Webhook bodies from registries and GitHub. Only the fields we read are declared; zod's default
 * object mode drops the rest, so a server adding fields never breaks us.
 */

/**
 * One event of a Docker distribution notification envelope
 * (https://distribution.github.io/distribution/about/notifications/). Pulls and blob pushes come
 * in the same envelope and are ignored by the caller.
 */
export const DistributionEvent = z.object({
  action: z.string(),
  target: z.object({
    repository: z.string().min(1),
    tag: z.string().min(1).optional(),
    digest: z.string().optional(),
    mediaType: z.string().optional(),
    url: z.string().optional(),
  }),
  request: z.object({ host: z.string().min(1).optional() }).optional(),
});
export type DistributionEvent = z.infer<typeof DistributionEvent>;

export const DistributionEnvelope = z.object({ events: z.array(DistributionEvent) });
export type DistributionEnvelope = z.infer<typeof DistributionEnvelope>;

/** Docker Hub's repository webhook (https://docs.docker.com/docker-hub/repos/manage/webhooks/). */
export const DockerHubPush = z.object({
  push_data: z.object({ tag: z.string().min(1) }),
  repository: z.object({ repo_name: z.string().min(1) }),
});
export type DockerHubPush = z.infer<typeof DockerHubPush>;

/**
 * Harbor's webhook (https://goharbor.io/docs/main/working-with-projects/project-configuration/
 * configure-webhooks/). `PUSH_ARTIFACT` since Harbor 2.0, `pushImage` before.
 */
export const HarborEvent = z.object({
  type: z.string(),
  event_data: z.object({
    resources: z.array(z.object({
      tag: z.string().optional(),
      digest: z.string().optional(),
      resource_url: z.string().min(1).optional(),
    })).default([]),
    repository: z.object({ repo_full_name: z.string().min(1).optional() }).optional(),
  }),
});
export type HarborEvent = z.infer<typeof HarborEvent>;

const CommitId = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'expected a full commit id');

/** GitHub's `push` event (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push). */
export const GitHubPush = z.object({
  ref: z.string().min(1),
  after: CommitId,
  deleted: z.boolean().optional(),
  repository: z.object({
    clone_url: z.string().min(1).optional(),
    ssh_url: z.string().min(1).optional(),
    html_url: z.string().min(1).optional(),
  }),
});
export type GitHubPush = z.infer<typeof GitHubPush>;

/** The optional body of a vote: `{"by": "alice"}` or a form field `by`. */
export const Vote = z.object({ by: z.string().trim().min(1).max(100).optional() });
export type Vote = z.infer<typeof Vote>;

/** The login form. */
export const Login = z.object({
  token: z.string().min(1, 'enter the API token'),
  name: z.string().trim().max(100).optional(),
  next: z.string().optional(),
});
export type Login = z.infer<typeof Login>;
