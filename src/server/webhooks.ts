import { createHmac, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import { RequestError } from './errors.js';
import { DistributionEnvelope, DockerHubPush, GitHubPush, HarborEvent, type DistributionEvent } from './schema.js';
import type { GitPushEvent } from './types.js';

export type RegistryFormat = 'distribution' | 'dockerhub' | 'harbor';

/** One pushed image named by a registry notification. */
export interface RegistryPush {
  /** `host[:port]/path`, as the registry watcher names repositories */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export interface RegistryNotification {
  readonly format: RegistryFormat;
  readonly pushes: readonly RegistryPush[];
}

/** Parses the body of a registry webhook, whichever of the three formats it is in. Throws RequestError (400). */
export function parseRegistryNotification(body: unknown): RegistryNotification {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestError(400, 'registry notification must be a JSON object');
  }
  if ('events' in body) {
    const envelope = check(DistributionEnvelope, body, 'Docker distribution notification');
    return { format: 'distribution', pushes: envelope.events.filter(isManifestPush).map(distributionPush) };
  }
  if ('push_data' in body) {
    const hub = check(DockerHubPush, body, 'Docker Hub webhook');
    return { format: 'dockerhub', pushes: [{ repository: dockerHubRepository(hub.repository.repo_name), tag: hub.push_data.tag }] };
  }
  if ('type' in body && 'event_data' in body) {
    const harbor = check(HarborEvent, body, 'Harbor webhook');
    if (harbor.type !== 'PUSH_ARTIFACT' && harbor.type !== 'pushImage') return { format: 'harbor', pushes: [] };
    const pushes = harbor.event_data.resources.map((resource, i): RegistryPush => {
      if (!resource.resource_url) throw new RequestError(400, `Harbor webhook: event_data.resources.${i}.resource_url: missing`);
      return { repository: repositoryOf(resource.resource_url), ...optional(resource.tag, resource.digest) };
    });
    return { format: 'harbor', pushes };
  }
  throw new RequestError(400, 'unknown registry notification: expected Docker distribution (events[]), Docker Hub (push_data) or Harbor (type, event_data)');
}

/** The distinct repositories of a notification, in order of first appearance. */
export function pushedRepositories(notification: RegistryNotification): string[] {
  return [...new Set(notification.pushes.map((p) => p.repository))];
}

// distribution sends an event per blob too; only a manifest (by tag or digest) is a new image.
function isManifestPush(event: DistributionEvent): boolean {
  if (event.action !== 'push') return false;
  if (event.target.tag) return true;
  return /manifest|image\.index/.test(event.target.mediaType ?? '');
}

function distributionPush(event: DistributionEvent): RegistryPush {
  // request.host is the host the pushing client used, which is the one in image references.
  const host = event.request?.host ?? hostOfUrl(event.target.url);
  if (!host) throw new RequestError(400, `Docker distribution notification: event for ${event.target.repository} has neither request.host nor target.url`);
  return { repository: `${host}/${event.target.repository}`, ...optional(event.target.tag, event.target.digest) };
}

function optional(tag: string | undefined, digest: string | undefined): { tag?: string; digest?: string } {
  return { ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

function hostOfUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}

/** Docker Hub names official images without `library/`; the watcher names them `docker.io/library/x`. */
export function dockerHubRepository(repoName: string): string {
  return `docker.io/${repoName.includes('/') ? repoName : `library/${repoName}`}`;
}

/** `host/path:tag` or `host/path@sha256:...` → `host/path` (a port's colon is before the first slash). */
export function repositoryOf(reference: string): string {
  let ref = reference.replace(/^[a-z]+:\/\//i, '');
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash && slash >= 0) ref = ref.slice(0, colon);
  return ref;
}

/**
 * Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
 * Anything else (missing, another algorithm, bad hex, wrong length) is false.
 */
export function verifyGitHubSignature(secret: string, rawBody: Buffer, header: string | undefined): boolean {
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header?.trim() ?? '');
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[1]!, 'hex'));
}

/** The value GitHub would send for this body, for tests and for tools that sign deliveries. */
export function signGitHubBody(secret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/**
 * A push event as the git watcher wants it, or undefined when it changes nothing to build (a tag,
 * a deleted branch). Throws RequestError (400) for a body that is not a push event.
 */
export function parseGitHubPush(body: unknown): GitPushEvent | undefined {
  const push = check(GitHubPush, body, 'GitHub push event');
  if (push.deleted || !push.ref.startsWith('refs/heads/')) return undefined;
  const { clone_url, ssh_url, html_url } = push.repository;
  const repoUrls = [clone_url, ssh_url, html_url].filter((u): u is string => u !== undefined);
  if (repoUrls.length === 0) throw new RequestError(400, 'GitHub push event: repository has no clone_url, ssh_url or html_url');
  return { repoUrls, branch: push.ref.slice('refs/heads/'.length), commit: push.after };
}

function check<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new RequestError(400, `${what}: ${path}${issue.message}`);
}
