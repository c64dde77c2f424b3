import { z } from 'zod';
import { DurationText } from '../domain/index.js';
import { Duration } from '../domain/index.js';
import { NOTIFICATION_EVENTS } from './types.js';

const HttpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/** Where a pipeline's commit statuses go. Exactly one of tokenFile and tokenSecret. */
export const StatusTarget = z.strictObject({
  provider: z.enum(['github', 'gitlab']),
  /** @default https://api.github.com or https://gitlab.com/api/v4; set it for GitHub Enterprise
   * (`https://ghe.example.com/api/v3`) or a self-hosted GitLab (`https://git.example.com/api/v4`) */
  apiUrl: HttpUrl.optional(),
  /** GitHub `context`, GitLab `name`. @default 'keelson' */
  context: z.string().min(1).max(255).default('keelson'),
  /** `owner/name` (or `group/sub/name`) when the watched URL is a local checkout. */
  repository: z.string().regex(/^[^/\s]+(\/[^/\s]+)+$/, 'expected owner/name or group/subgroup/name').optional(),
  tokenFile: z.string().min(1).optional(),
  /** A key of a Kubernetes Secret in keelson's namespace. */
  tokenSecret: z.strictObject({ name: z.string().min(1), key: z.string().min(1) }).optional(),
}).refine((target) => (target.tokenFile === undefined) !== (target.tokenSecret === undefined), {
  message: 'set exactly one of tokenFile and tokenSecret',
  path: ['tokenFile'],
});
export type StatusTarget = z.infer<typeof StatusTarget>;

export const NotificationTarget = z.strictObject({
  type: z.enum(['webhook', 'slack']),
  url: HttpUrl,
  events: z.array(z.enum(NOTIFICATION_EVENTS)).min(1, 'list at least one of run.finished, rollout.done, approval.needed'),
  /** Time for the receiver to answer one attempt. @default 10s */
  timeout: DurationText.default(Duration.ofSeconds(10)),
});
export type NotificationTarget = z.infer<typeof NotificationTarget>;

/** The `report:` section of a pipeline: commit statuses and notifications. */
export const ReportConfig = z.strictObject({
  statuses: z.array(StatusTarget).default([]),
  notifications: z.array(NotificationTarget).default([]),
});
export type ReportConfig = z.infer<typeof ReportConfig>;
