/** Where the API server is and how to talk to it: resolved once from a kubeconfig or the pod. */
export interface KubeConnection {
  /** `https://host:port` (no trailing slash; a path prefix is kept) */
  readonly server: string;
  /** PEM; undefined: the system's CAs */
  readonly ca?: Buffer;
  /** Client certificate and key (PEM) */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  /** SNI and the name the server certificate is checked against, when not the server's host */
  readonly tlsServerName?: string;
  /** An http(s) proxy in front of the API server */
  readonly proxyUrl?: string;
  /** The context's namespace (in a pod: the service account's) */
  readonly namespace?: string;
  /** Impersonation (`as:` of the user) */
  readonly impersonate?: string;
  readonly auth: KubeAuth;
  /** What it was read from, for messages: the kubeconfig file(s) and context, or `in-cluster` */
  readonly source: string;
}

export type KubeAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  /** Read again whenever the file changes (a service account's projected token is rotated by the kubelet) */
  | { readonly kind: 'token-file'; readonly path: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  /**
   * A credential plugin (`exec:`) or an `auth-provider:`: client-node's KubeConfig runs it,
   * loaded on first use, so only the users who need it pay for the library.
   */
  | { readonly kind: 'client-node'; readonly user: Readonly<Record<string, unknown>>; readonly userName: string };

export type QueryValue = string | number | boolean | undefined;

export interface KubeRequest {
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly body?: unknown;
  /** @default application/json when there is a body */
  readonly contentType?: string;
}

/** One event of a watch (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`). */
export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

/** The metadata of a list: where it was read (to watch from) and the token of the next page */
export interface ListMeta {
  readonly resourceVersion?: string;
  readonly continue?: string;
}

/** The API server, by paths (`/apis/apps/v1/...`). */
export interface KubeClient {
  /** The context's namespace, if any */
  readonly namespace: string | undefined;
  /** One call; resolves to the JSON answer, rejects with KubeApiError on an error status. */
  request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, request?: KubeRequest): Promise<T>;
  /**
   * One page of a list: each item to `onItem` as it arrives (parsed on its own, never the
   * whole page at once); resolves to the list's metadata.
   */
  list(path: string, query: Readonly<Record<string, QueryValue>>, onItem: (item: unknown) => void): Promise<ListMeta>;
  /**
   * A watch: each event to `onEvent` until the server ends the stream (resolves), `signal`
   * aborts it (resolves) or it fails (rejects; KubeApiError for an error status).
   */
  watch(path: string, query: Readonly<Record<string, QueryValue>>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
  /** Closes the kept connections. */
  close(): Promise<void>;
}
