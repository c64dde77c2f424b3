import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/index.js';
import type { RunLogStore, RunPhase, RunReader, StateStore, Store } from '../store/index.js';

/**
 * What the server uses of the store: it reads runs, logs and the traces of their digests, never
 * writes runs (`appendLog` is in the type only because `followLog` takes a whole RunLogStore),
 * and keeps sign-in sessions in the state, so that replicas sharing a store share them.
 */
export type ServerStore = Pick<Store, keyof RunReader | keyof RunLogStore | keyof StateStore | 'description'>;

/** A source's own verdict for `/readyz`; the reason is shown to whoever asks. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** Every source may say whether it is ready (e.g. "first poll not done"); absent means ready. */
export interface ReadinessReporter {
  ready?(): Readiness | Promise<Readiness>;
}

/** One git watch as the page shows it. GitWatcher's `WatchStatus` fits as it is. */
export interface WatchInfo {
  /** `repo^branch` */
  readonly key: string;
  /** The spec as written, without credentials */
  readonly display: string;
  /** The last commit whose run ended */
  readonly lastDone?: string;
  readonly running?: string;
  readonly pending?: string;
  /** `@every 30s` or a cron line */
  readonly schedule?: string;
  /** ISO-8601 */
  readonly nextCheckAt?: string;
  readonly failures?: number;
  readonly lastError?: string;
  /** The newest run of this watch (filled by the server from the store) */
  readonly lastRun?: WatchLastRun;
}

/** How the newest run of a watch went. */
export interface WatchLastRun {
  readonly id: string;
  readonly commit: string;
  readonly phase: RunPhase;
  readonly reason: string;
  readonly message: string;
  /** ISO-8601: when it ended, or when it was created while it goes */
  readonly at: string;
}

export interface WatchSource extends ReadinessReporter {
  watches(): readonly WatchInfo[] | Promise<readonly WatchInfo[]>;
  /** Polls one watch (by key) or every watch now (`POST /api/watches/check`); GitWatcher's
   * `pollOnce` fits. @default not offered (404) */
  checkNow?(key?: string): unknown;
}

/** One registry poll job. RegistryWatcher's `JobStatus` fits as it is. */
export interface RegistryJobInfo {
  readonly key: string;
  readonly repository: string;
  readonly tag?: string;
  readonly schedule: string;
  readonly nextCheckAt: string;
  readonly lastCheckedAt?: string;
  readonly failures: number;
  readonly lastError?: string;
  readonly targetIds: readonly string[];
}

export interface RegistrySource extends ReadinessReporter {
  jobs(): readonly RegistryJobInfo[] | Promise<readonly RegistryJobInfo[]>;
  /**
   * Checks the jobs of `repository` (`host[:port]/path`, no tag) now; every job when absent.
   * RegistryWatcher's `checkNow` fits. Called without waiting by the registry webhook.
   */
  checkNow(repository?: string): Promise<unknown>;
}

export interface WorkloadImage {
  readonly container: string;
  /** The image the workload runs now */
  readonly current: string;
  /** The image it would roll to (a newer tag seen, awaiting approval or a hold) */
  readonly candidate?: string;
  /** Why the candidate waits: Held, AwaitingApproval, Failed */
  readonly candidateReason?: string;
  /** Last rollout keelson applied to this container */
  readonly rolledOut?: { readonly image: string; readonly digest?: string; readonly at: string };
  /** The registry check polling this container's image, when it is failing (filled by the server) */
  readonly checkFailed?: { readonly failures: number; readonly lastError: string };
}

/** A workload the rollout controller follows. */
export interface WorkloadInfo {
  /** `namespace/kind/name` */
  readonly key: string;
  readonly policy?: string;
  /** `keel.sh/pollSchedule` of poll-triggered workloads */
  readonly pollSchedule?: string;
  /** Approvals an update needs (0: none) */
  readonly approvals?: number;
  readonly images?: readonly WorkloadImage[];
  /** The controller's last decision about it */
  readonly lastDecision?: { readonly outcome: string; readonly message: string; readonly at: string };
  /** Who holds it (builds running in it) */
  readonly heldBy?: readonly string[];
  /** Why it is skipped (bad annotations) */
  readonly error?: string;
}

export interface WorkloadSource extends ReadinessReporter {
  workloads(): readonly WorkloadInfo[] | Promise<readonly WorkloadInfo[]>;
}

/** A pending approval. src/rollout's `Approval` fits as it is. */
export interface ApprovalInfo {
  readonly id: string;
  readonly workload: { readonly kind: string; readonly namespace: string; readonly name: string };
  readonly changes: readonly { readonly container: string; readonly from: string; readonly to: string }[];
  readonly votesRequired: number;
  readonly voters: readonly string[];
  readonly createdAt: string;
  readonly deadline: string;
}

/**
 * Approvals. `approve`/`reject` throw ApprovalNotFoundError (404) or ApprovalClosedError (409)
 * from src/rollout; any other KeelsonError with exit code 2 is a 400.
 */
export interface ApprovalSource extends ReadinessReporter {
  pending(): Promise<readonly ApprovalInfo[]>;
  approve(id: string, by: string): Promise<ApprovalInfo>;
  reject(id: string, by: string): Promise<ApprovalInfo>;
}

/** A dependency scaled on demand (minio, RabbitMQ...). */
export interface DependencyInfo {
  /** `namespace/kind/name` */
  readonly key: string;
  /** Replicas asked for now (0 when nobody uses it) */
  readonly replicas: number;
  readonly readyReplicas: number;
  /** The runs or workloads holding it up */
  readonly holders?: readonly string[];
  /** The workloads whose keelson.dev/dependencies name it */
  readonly declaredBy?: readonly string[];
}

export interface DependencySource extends ReadinessReporter {
  dependencies(): readonly DependencyInfo[] | Promise<readonly DependencyInfo[]>;
}

/** A verified GitHub push, for the git watcher: poll the watches of these URLs and branch now. */
export interface GitPushEvent {
  /** clone_url, ssh_url and html_url as GitHub sent them (a watch may use any of them) */
  readonly repoUrls: readonly string[];
  readonly branch: string;
  /** The `after` commit */
  readonly commit: string;
}

export interface GitPushSink {
  push(event: GitPushEvent): unknown;
}

export interface ServerSources {
  readonly watches?: WatchSource;
  readonly registry?: RegistrySource;
  readonly workloads?: WorkloadSource;
  readonly approvals?: ApprovalSource;
  readonly dependencies?: DependencySource;
  readonly gitPush?: GitPushSink;
}

export interface ServerAuth {
  /**
   * Bearer token for mutating endpoints (approve, reject, check now), read by the caller from a
   * file or a Secret. @default none: mutating endpoints answer 403
   */
  readonly token?: string;
  /** Read-only views (pages, GET /api/...) need no token. @default true */
  readonly readOnlyPublic?: boolean;
  /** How long a sign-in lasts (the server forgets the session after that). @default 7 days */
  readonly sessionMaxAgeMs?: number;
}

export interface ServerOptions {
  readonly store: ServerStore;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** @default {} (sections without a source are left out of the page; their API answers 404) */
  readonly sources?: ServerSources;
  /** @default { readOnlyPublic: true } */
  readonly auth?: ServerAuth;
  /**
   * Where people reach the page. When it is https, the session cookie is `Secure` (also behind a
   * proxy that terminates TLS and sends no X-Forwarded-Proto). @default none
   */
  readonly publicUrl?: string;
  /** HMAC key of GitHub push webhooks. @default none: /webhooks/github answers 404 */
  readonly githubWebhookSecret?: string;
  /**
   * Shared token `/webhooks/registry` requires (`Authorization: Bearer TOKEN`, `Authorization:
   * Token TOKEN` or `?token=TOKEN`), read by the caller from a file. @default none: anyone may
   * ask for a registry check (it only polls the registry sooner)
   */
  readonly registryWebhookToken?: string;
  /** Largest request body. @default 1 MiB (413 above) */
  readonly maxBodyBytes?: number;
  /** Runs on the overview page. @default 50 */
  readonly recentRuns?: number;
  /** How often a followed log is re-read. @default 500 ms */
  readonly logPollMs?: number;
  /** How long `/readyz` waits for the store. @default 2000 ms */
  readonly readyTimeoutMs?: number;
}

export interface ListeningServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends live log streams, and resolves when every connection is closed. */
  close(): Promise<void>;
}

export interface KeelsonServer {
  /** Listens once (a second call throws). @default host 127.0.0.1; pass '0.0.0.0' in a pod */
  listen(port: number, host?: string): Promise<ListeningServer>;
  /** The request handler, for callers that own the http.Server (tests, TLS). */
  readonly handler: (request: IncomingMessage, response: ServerResponse) => void;
}
