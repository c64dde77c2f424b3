/**
 * A contract server for the forge and chat APIs keelson calls but cannot reach from CI: the
 * GitHub REST API (commit statuses, releases, release asset uploads), the GitLab commit status
 * API, Slack incoming webhooks and a generic webhook receiver. It is a real HTTP server on
 * 127.0.0.1:<free port> that checks every request against the documented contract (method,
 * path, required headers, body schema) and answers as those services do, error bodies included.
 *
 * A request that breaks the contract is answered 400 `{"message":"contract violation: ..."}` and
 * listed in `violations`: tests assert that list is empty, so a sloppy client fails the test.
 *
 *   const server = await startContractServer({ github: { tokens: { [token]: ['org/app'] } } });
 *   // server.githubApiUrl = http://127.0.0.1:PORT/api/v3 (GitHub Enterprise layout)
 *   server.failNext(2, { status: 502 });          // the next two requests get a 502
 *   server.failNext(1, { status: 429, retryAfter: 1 });
 *   ...
 *   expect(server.violations).to.deep.equal([]);
 *   await server.stop();
 *
 * Contracts (as documented at docs.github.com/rest and docs.gitlab.com/api):
 * - GitHub: `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`,
 *   `X-GitHub-Api-Version: 2022-11-28`, a `User-Agent`; JSON bodies with `Content-Type:
 *   application/json`. 401 `{"message":"Bad credentials",...}`, 404 `{"message":"Not Found",...}`,
 *   422 `{"message":"Validation Failed","errors":[...]}`.
 * - GitHub uploads: the release's `upload_url` (`{?name,label}` template), raw body with
 *   `Content-Type` and `Content-Length`.
 * - GitLab: `PRIVATE-TOKEN`; 401 `{"message":"401 Unauthorized"}`, 404
 *   `{"message":"404 Project Not Found"}`, 400 for a state it cannot move to.
 * - Slack: JSON `{ text, blocks? }`; answers `ok`, or 400 `invalid_payload` / `no_text`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';

const GITHUB_DOCS = 'https://docs.github.com/rest';
const GITHUB_API_VERSION = '2022-11-28';

export interface RecordedRequest {
  readonly method: string;
  /** Path without the query, percent-encoding kept (`/api/v4/projects/group%2Fapp/...`) */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  /** The status the server answered */
  status: number;
}

export type Fault =
  | { readonly status: 500 | 502 | 503 | 504 }
  | { readonly status: 429; readonly retryAfter?: number }
  /** GitHub's primary rate limit: 403 with x-ratelimit-remaining 0 and the reset time */
  | { readonly status: 403; readonly rateLimitResetIn: number }
  /** No answer at all (the connection stays open until the client gives up or the server stops) */
  | { readonly status: 'hang' }
  /** A careless proxy or forge: 401 whose message echoes the request's credentials, as sent and base64-encoded */
  | { readonly status: 401; readonly echoCredentials: true };

export interface GitHubStatus {
  readonly id: number;
  readonly state: string;
  readonly description: string | null;
  readonly target_url: string | null;
  readonly context: string;
}

export interface GitHubAsset {
  readonly id: number;
  readonly name: string;
  readonly label: string | null;
  readonly content_type: string;
  readonly size: number;
  readonly sha256: string;
}

export interface GitHubRelease {
  readonly id: number;
  readonly repo: string;
  readonly tag_name: string;
  readonly name: string | null;
  readonly body: string | null;
  readonly target_commitish: string;
  readonly draft: boolean;
  readonly prerelease: boolean;
  readonly assets: GitHubAsset[];
}

export interface GitLabStatus {
  readonly id: number;
  readonly sha: string;
  readonly ref: string | null;
  readonly status: string;
  readonly name: string;
  readonly target_url: string | null;
  readonly description: string | null;
}

export interface ContractServerOptions {
  /** token → repositories (`owner/name`) it may write; the repositories exist. */
  readonly github?: { readonly tokens: Readonly<Record<string, readonly string[]>> };
  /** token → project paths (`group/sub/name`) it may write. */
  readonly gitlab?: { readonly tokens: Readonly<Record<string, readonly string[]>> };
}

export interface ContractServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** GitHub Enterprise layout: `<url>/api/v3`, uploads under `<url>/api/uploads` */
  readonly githubApiUrl: string;
  readonly gitlabApiUrl: string;
  /** A Slack incoming webhook URL (its path is the secret) */
  readonly slackUrl: string;
  /** A generic JSON webhook receiver */
  readonly webhookUrl: string;
  readonly requests: RecordedRequest[];
  /** Contract breaks seen (each was answered 400) */
  readonly violations: string[];
  /** `owner/name` → sha → statuses, oldest first */
  readonly githubStatuses: Map<string, Map<string, GitHubStatus[]>>;
  readonly releases: GitHubRelease[];
  /** asset id → bytes */
  readonly assetBytes: Map<number, Buffer>;
  /** `group/sub/name` → every status posted, oldest first */
  readonly gitlabStatuses: Map<string, GitLabStatus[]>;
  readonly slackMessages: unknown[];
  readonly webhookEvents: unknown[];
  /** The next `count` requests (any route) are answered with `fault` before anything else. */
  failNext(count: number, fault: Fault): void;
  /** Forgets recorded requests, violations and pending faults (state is kept). */
  resetRecords(): void;
  stop(): Promise<void>;
}

class Violation extends Error {}

function violation(detail: string): never {
  throw new Violation(detail);
}

function parseBody<T>(schema: z.ZodType<T>, request: RecordedRequest, what: string): T {
  const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== 'application/json') violation(`${what}: Content-Type must be application/json, got "${type}"`);
  let raw: unknown;
  try {
    raw = JSON.parse(request.body.toString('utf8'));
  } catch {
    violation(`${what}: body is not JSON`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    violation(`${what}: ${result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  }
  return result.data;
}

const GitHubStatusBody = z.strictObject({
  state: z.enum(['error', 'failure', 'pending', 'success']),
  target_url: z.string().url().nullable().optional(),
  description: z.string().nullable().optional(),
  context: z.string().min(1).optional(),
});

const GitHubReleaseBody = z.strictObject({
  tag_name: z.string().min(1),
  target_commitish: z.string().min(1).optional(),
  name: z.string().optional(),
  body: z.string().optional(),
  draft: z.boolean().optional(),
  prerelease: z.boolean().optional(),
  generate_release_notes: z.boolean().optional(),
  make_latest: z.enum(['true', 'false', 'legacy']).optional(),
});

const GitLabStatusBody = z.strictObject({
  state: z.string(),
  ref: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  target_url: z.string().url().optional(),
  description: z.string().optional(),
  coverage: z.number().optional(),
  pipeline_id: z.number().int().optional(),
});

const SlackBody = z.object({
  text: z.string().optional(),
  blocks: z.array(z.object({ type: z.string().min(1) }).loose()).optional(),
});

const WebhookBody = z.object({
  event: z.enum(['run.finished', 'rollout.done', 'approval.needed']),
  at: z.iso.datetime(),
}).loose();

/** GitLab's event per requested state, as in its `Cannot transition status via :run` messages. */
const GITLAB_EVENTS: Record<string, string> = { pending: 'enqueue', running: 'run', success: 'success', failed: 'drop', canceled: 'cancel', skipped: 'skip' };
/** From which states each requested state may be reached (CommitStatus state machine). */
const GITLAB_FROM: Record<string, readonly string[]> = {
  pending: ['created', 'skipped'],
  running: ['created', 'pending'],   // the API enqueues a fresh status before `run`
  success: ['created', 'pending', 'running'],
  failed: ['created', 'pending', 'running'],
  canceled: ['created', 'pending', 'running'],
  skipped: ['created', 'pending'],
};

export async function startContractServer(options: ContractServerOptions = {}): Promise<ContractServer> {
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const faults: Fault[] = [];
  const githubStatuses = new Map<string, Map<string, GitHubStatus[]>>();
  const releases: GitHubRelease[] = [];
  const assetBytes = new Map<number, Buffer>();
  const gitlabStatuses = new Map<string, GitLabStatus[]>();
  const gitlabOpen = new Map<string, GitLabStatus>();
  const slackMessages: unknown[] = [];
  const webhookEvents: unknown[] = [];
  const slackPath = '/services/T0KEELSON/B0KEELSON/c0ntractS3rverSecret';
  let nextId = 1;
  let url = '';

  type Reply = { status: number; body: unknown; headers?: Record<string, string> };
  const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({ status, body, ...(headers ? { headers } : {}) });
  const githubError = (status: number, message: string, extra: object = {}): Reply =>
    json(status, { message, ...extra, documentation_url: GITHUB_DOCS, status: String(status) });
  const notFound = () => githubError(404, 'Not Found');

  /** The repositories the request's token may write, or the 401 to answer. */
  function githubAuth(request: RecordedRequest): readonly string[] | Reply {
    const accept = String(request.headers.accept ?? '');
    if (accept !== 'application/vnd.github+json') violation(`GitHub: Accept must be application/vnd.github+json, got "${accept}"`);
    const version = request.headers['x-github-api-version'];
    if (version !== GITHUB_API_VERSION) violation(`GitHub: X-GitHub-Api-Version must be ${GITHUB_API_VERSION}, got "${String(version)}"`);
    if (!request.headers['user-agent']) violation('GitHub: a User-Agent header is required');
    const authorization = String(request.headers.authorization ?? '');
    if (!authorization) return githubError(401, 'Requires authentication');
    const match = /^(?:Bearer|token) (\S+)$/.exec(authorization);
    if (!match) violation(`GitHub: Authorization must be "Bearer <token>", got "${authorization.split(' ')[0]} ..."`);
    const repos = options.github?.tokens[match[1]!];
    return repos ?? githubError(401, 'Bad credentials');
  }

  function github(request: RecordedRequest, path: string): Reply {
    const auth = githubAuth(request);
    if (!Array.isArray(auth)) return auth as Reply;
    const segments = path.split('/').slice(1).map(decodeURIComponent);
    const [root, owner, name, collection, ...rest] = segments;
    if (root !== 'repos' || !owner || !name || !collection) return notFound();
    const repo = `${owner}/${name}`;
    if (!auth.includes(repo)) return notFound();  // GitHub hides repositories a token cannot see

    if (collection === 'statuses' && rest.length === 1) {
      if (request.method !== 'POST') return notFound();
      const sha = rest[0]!;
      const body = parseBody(GitHubStatusBody, request, 'POST statuses');
      if (!/^[0-9a-f]{40}$/.test(sha)) return githubError(422, `No commit found for SHA: ${sha}`);
      if ((body.description ?? '').length > 140) {
        return githubError(422, 'Validation Failed', { errors: [{ resource: 'Status', code: 'custom', field: 'description', message: 'description is too long (maximum is 140 characters)' }] });
      }
      const status: GitHubStatus = {
        id: nextId++, state: body.state, description: body.description ?? null, target_url: body.target_url ?? null,
        context: body.context ?? 'default',
      };
      const byRepo = githubStatuses.get(repo) ?? new Map<string, GitHubStatus[]>();
      githubStatuses.set(repo, byRepo);
      byRepo.set(sha, [...(byRepo.get(sha) ?? []), status]);
      return json(201, { url: `${url}/api/v3/repos/${repo}/statuses/${sha}`, node_id: `SC_${status.id}`, ...status, created_at: new Date().toISOString(), creator: { login: 'keelson-bot' } });
    }
    if (collection === 'releases') {
      if (rest.length === 2 && rest[0] === 'tags' && request.method === 'GET') {
        const release = releases.find((r) => r.repo === repo && r.tag_name === rest[1]);
        return release ? json(200, releaseJson(release)) : notFound();
      }
      if (rest.length === 0 && request.method === 'POST') {
        const body = parseBody(GitHubReleaseBody, request, 'POST releases');
        if (releases.some((r) => r.repo === repo && r.tag_name === body.tag_name)) {
          return githubError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });
        }
        // GitHub checks that the target is a branch or a commit of the repository; here `main` is the one branch.
        if (body.target_commitish !== undefined && body.target_commitish !== 'main' && !/^[0-9a-f]{40}$/.test(body.target_commitish)) {
          return githubError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }] });
        }
        const release: GitHubRelease = {
          id: nextId++, repo, tag_name: body.tag_name, name: body.name ?? null, body: body.body ?? null,
          target_commitish: body.target_commitish ?? 'main', draft: body.draft ?? false, prerelease: body.prerelease ?? false, assets: [],
        };
        releases.push(release);
        return json(201, releaseJson(release));
      }
    }
    return notFound();
  }

  function releaseJson(release: GitHubRelease): object {
    const api = `${url}/api/v3/repos/${release.repo}/releases/${release.id}`;
    return {
      url: api, id: release.id, node_id: `RE_${release.id}`, tag_name: release.tag_name, name: release.name, body: release.body,
      target_commitish: release.target_commitish, draft: release.draft, prerelease: release.prerelease,
      html_url: `${url}/${release.repo}/releases/tag/${encodeURIComponent(release.tag_name)}`,
      assets_url: `${api}/assets`,
      upload_url: `${url}/api/uploads/repos/${release.repo}/releases/${release.id}/assets{?name,label}`,
      assets: release.assets.map((asset) => assetJson(release, asset)),
    };
  }

  function assetJson(release: GitHubRelease, asset: GitHubAsset): object {
    const { sha256: _hash, ...fields } = asset;
    return { ...fields, state: 'uploaded', browser_download_url: `${url}/${release.repo}/releases/download/${release.tag_name}/${asset.name}` };
  }

  function githubUpload(request: RecordedRequest, path: string): Reply {
    const auth = githubAuth(request);
    if (!Array.isArray(auth)) return auth as Reply;
    const match = /^\/repos\/([^/]+)\/([^/]+)\/releases\/(\d+)\/assets$/.exec(path);
    if (!match || request.method !== 'POST') return notFound();
    const repo = `${decodeURIComponent(match[1]!)}/${decodeURIComponent(match[2]!)}`;
    const release = releases.find((r) => r.repo === repo && r.id === Number(match[3]));
    if (!auth.includes(repo) || !release) return notFound();
    const contentType = request.headers['content-type'];
    if (!contentType) violation('upload asset: Content-Type is required (the asset\'s media type)');
    const length = request.headers['content-length'];
    if (length === undefined || request.headers['transfer-encoding']) violation('upload asset: Content-Length is required (no chunked transfer encoding)');
    if (Number(length) !== request.body.length) violation(`upload asset: Content-Length ${length} but ${request.body.length} bytes sent`);
    const name = request.query.get('name');
    if (!name) violation('upload asset: the name query parameter is required');
    if (release.assets.some((a) => a.name === name)) {
      return githubError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] });
    }
    const asset: GitHubAsset = {
      id: nextId++, name, label: request.query.get('label'), content_type: contentType, size: request.body.length,
      sha256: createHash('sha256').update(request.body).digest('hex'),
    };
    release.assets.push(asset);
    assetBytes.set(asset.id, request.body);
    return json(201, assetJson(release, asset));
  }

  function gitlab(request: RecordedRequest, path: string): Reply {
    const token = request.headers['private-token'];
    const projects = typeof token === 'string' ? options.gitlab?.tokens[token] : undefined;
    if (!projects) return json(401, { message: '401 Unauthorized' });
    const match = /^\/projects\/([^/]+)\/statuses\/([^/]+)$/.exec(path);
    if (!match || request.method !== 'POST') return json(404, { error: '404 Not Found' });
    if (match[1]!.includes('/')) violation('GitLab: the project path must be URL-encoded (group%2Fname)');
    const project = decodeURIComponent(match[1]!);
    if (!projects.includes(project)) return json(404, { message: '404 Project Not Found' });
    const body = parseBody(GitLabStatusBody, request, 'POST statuses');
    if (!(body.state in GITLAB_EVENTS)) return json(400, { error: 'state does not have a valid value' });
    const sha = match[2]!;
    if (!/^[0-9a-f]{40}$/.test(sha)) return json(404, { message: '404 Commit Not Found' });
    const name = body.name ?? body.context ?? 'default';
    const history = gitlabStatuses.get(project) ?? [];
    gitlabStatuses.set(project, history);
    // The API reuses a pending or running status of the same name, ref and sha; else a new one.
    const key = JSON.stringify([project, sha, name, body.ref ?? null]);
    const open = gitlabOpen.get(key);
    const from = open?.status ?? 'created';
    if (!GITLAB_FROM[body.state]!.includes(from)) {
      return json(400, { message: `Cannot transition status via :${GITLAB_EVENTS[body.state]} from :${from}` });
    }
    const status: GitLabStatus = {
      id: open?.id ?? nextId++, sha, ref: body.ref ?? null, status: body.state, name,
      target_url: body.target_url ?? null, description: body.description ?? null,
    };
    if (['pending', 'running'].includes(body.state)) gitlabOpen.set(key, status);
    else gitlabOpen.delete(key);
    history.push(status);
    return json(201, { ...status, created_at: new Date().toISOString(), allow_failure: false, coverage: null, author: { username: 'keelson-bot' } });
  }

  function slack(request: RecordedRequest): Reply {
    if (request.method !== 'POST') return { status: 405, body: 'invalid_method' };
    let raw: unknown;
    try {
      raw = JSON.parse(request.body.toString('utf8'));
    } catch {
      return { status: 400, body: 'invalid_payload' };
    }
    const type = String(request.headers['content-type'] ?? '').split(';')[0];
    if (type !== 'application/json') violation(`Slack: Content-Type must be application/json, got "${type}"`);
    const parsed = SlackBody.safeParse(raw);
    if (!parsed.success) return { status: 400, body: 'invalid_payload' };
    if (!parsed.data.text && !parsed.data.blocks?.length) return { status: 400, body: 'no_text' };
    slackMessages.push(parsed.data);
    return { status: 200, body: 'ok' };
  }

  function webhook(request: RecordedRequest): Reply {
    if (request.method !== 'POST') return json(405, { message: 'POST only' });
    webhookEvents.push(parseBody(WebhookBody, request, 'webhook'));
    return json(200, { received: true });
  }

  function route(request: RecordedRequest): Reply {
    const fault = faults.shift();
    if (fault) {
      switch (fault.status) {
        case 'hang':
          throw new Error('unreachable: hangs are handled before routing');
        case 429:
          return json(429, { message: 'You have exceeded a secondary rate limit.' }, fault.retryAfter === undefined ? undefined : { 'retry-after': String(fault.retryAfter) });
        case 401: {
          const sent = String(request.headers.authorization ?? request.headers['private-token'] ?? '');
          return json(401, { message: `Bad credentials: ${sent} (${Buffer.from(sent).toString('base64')})` });
        }
        case 403:
          return json(403, { message: 'API rate limit exceeded' }, {
            'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000',
            'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000 + fault.rateLimitResetIn)),
          });
        default:
          return json(fault.status, { message: 'Server Error' });
      }
    }
    const { path } = request;
    if (path.startsWith('/api/v3/')) return github(request, path.slice('/api/v3'.length));
    if (path.startsWith('/api/uploads/')) return githubUpload(request, path.slice('/api/uploads'.length));
    if (path.startsWith('/api/v4/')) return gitlab(request, path.slice('/api/v4'.length));
    if (path === slackPath) return slack(request);
    if (path.startsWith('/services/')) return { status: 404, body: 'no_service' };
    if (path === '/hooks/keelson') return webhook(request);
    return json(404, { message: 'Not Found' });
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const parsed = new URL(req.url ?? '/', 'http://contract');
      const request: RecordedRequest = {
        method: req.method ?? '', path: parsed.pathname, query: parsed.searchParams, headers: req.headers,
        body: Buffer.concat(chunks), status: 0,
      };
      requests.push(request);
      if (faults[0]?.status === 'hang') {
        faults.shift();
        return;
      }
      let reply: Reply;
      try {
        reply = route(request);
      } catch (error) {
        if (!(error instanceof Violation)) throw error;
        violations.push(`${request.method} ${request.path}: ${error.message}`);
        reply = json(400, { message: `contract violation: ${error.message}` });
      }
      request.status = reply.status;
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        'content-type': typeof reply.body === 'string' ? 'text/html' : 'application/json; charset=utf-8',
        ...reply.headers,
      }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  return {
    url,
    githubApiUrl: `${url}/api/v3`,
    gitlabApiUrl: `${url}/api/v4`,
    slackUrl: `${url}${slackPath}`,
    webhookUrl: `${url}/hooks/keelson`,
    requests, violations, githubStatuses, releases, assetBytes, gitlabStatuses, slackMessages, webhookEvents,
    failNext(count: number, fault: Fault) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    resetRecords() {
      requests.length = 0;
      violations.length = 0;
      faults.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
