import { readFile, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { stringify } from 'yaml';
import { KubeApiError } from './errors.js';
import { ListItemSplitter } from './list-stream.js';
import type { KubeClient, KubeConnection, KubeRequest, ListMeta, QueryValue, WatchEvent } from './types.js';

const HEADERS_TIMEOUT_MS = 60_000;
const BODY_TIMEOUT_MS = 120_000;
/** Idle kept-alive connections close after this (the API server keeps them far longer). */
const KEEP_ALIVE_MS = 60_000;

type Headers = Record<string, string>;
interface ClientNodeAuth { headers: Headers; cert?: Buffer; key?: Buffer }

/**
 * The API server over undici: one keep-alive pool per connection settings (a TLS handshake with
 * a client certificate costs more CPU than the call), JSON in and out, watches as streams of
 * JSON lines. Credential plugins and auth providers go through client-node's KubeConfig,
 * imported the first time such a user makes a call.
 */
export class HttpKubeClient implements KubeClient {
  readonly namespace: string | undefined;
  private dispatcher: Dispatcher;
  private token: { value: string; version: string } | undefined;
  private clientNode: Promise<() => Promise<ClientNodeAuth>> | undefined;
  /** The client certificate a credential plugin handed out, which the current pool uses */
  private pluginCert: string | undefined;

  constructor(private readonly connection: KubeConnection) {
    this.namespace = connection.namespace;
    this.dispatcher = this.makeDispatcher(connection.cert, connection.key);
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: KubeRequest = {}): Promise<T> {
    const headers = await this.headers();
    if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await request(this.url(path, options.query), {
      method, headers, dispatcher: this.dispatcher,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS,
    });
    const text = await response.body.text();
    if (response.statusCode >= 400) throw new KubeApiError(response.statusCode, bodyOf(text), `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async list(path: string, query: Readonly<Record<string, QueryValue>>, onItem: (item: unknown) => void): Promise<ListMeta> {
    const headers = await this.headers();
    const response = await request(this.url(path, query), {
      method: 'GET', headers, dispatcher: this.dispatcher, headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: BODY_TIMEOUT_MS,
    });
    if (response.statusCode >= 400) throw new KubeApiError(response.statusCode, bodyOf(await response.body.text()), `GET ${path}`);
    const splitter = new ListItemSplitter(onItem);
    for await (const text of utf8(response.body)) splitter.push(text);
    const metadata = (splitter.end().metadata ?? {}) as { resourceVersion?: unknown; continue?: unknown };
    return {
      ...(typeof metadata.resourceVersion === 'string' ? { resourceVersion: metadata.resourceVersion } : {}),
      ...(typeof metadata.continue === 'string' && metadata.continue ? { continue: metadata.continue } : {}),
    };
  }

  async watch(path: string, query: Readonly<Record<string, QueryValue>>, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const headers = await this.headers();
    // A watch is quiet while nothing changes: its body may wait as long as the server keeps it open.
    const serverTimeout = typeof query.timeoutSeconds === 'number' ? query.timeoutSeconds : undefined;
    try {
      const response = await request(this.url(path, { ...query, watch: true }), {
        method: 'GET', headers, dispatcher: this.dispatcher, signal,
        headersTimeout: HEADERS_TIMEOUT_MS, bodyTimeout: serverTimeout === undefined ? 0 : (serverTimeout + 30) * 1000,
      });
      if (response.statusCode >= 400) throw new KubeApiError(response.statusCode, bodyOf(await response.body.text()), `watch ${path}`);
      let pending = '';
      for await (const text of utf8(response.body)) {
        pending += text;
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent);
        }
      }
      if (pending.trim()) onEvent(JSON.parse(pending) as WatchEvent);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private url(path: string, query: Readonly<Record<string, QueryValue>> | undefined): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(key, String(value));
    const search = params.toString();
    return `${this.connection.server}${path}${search ? `?${search}` : ''}`;
  }

  private makeDispatcher(cert: Buffer | undefined, key: Buffer | undefined): Dispatcher {
    const c = this.connection;
    const tls = {
      ...(c.ca ? { ca: c.ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: !c.insecureSkipTlsVerify,
      ...(c.tlsServerName ? { servername: c.tlsServerName } : {}),
    };
    if (c.proxyUrl) return new ProxyAgent({ uri: c.proxyUrl, requestTls: tls, keepAliveTimeout: KEEP_ALIVE_MS });
    return new Agent({ connect: tls, keepAliveTimeout: KEEP_ALIVE_MS, keepAliveMaxTimeout: KEEP_ALIVE_MS });
  }

  private async headers(): Promise<Headers> {
    const headers: Headers = { accept: 'application/json', 'user-agent': 'keelson' };
    if (this.connection.impersonate) headers['impersonate-user'] = this.connection.impersonate;
    const auth = this.connection.auth;
    switch (auth.kind) {
      case 'none':
        break;
      case 'token':
        headers.authorization = `Bearer ${auth.token}`;
        break;
      case 'token-file':
        headers.authorization = `Bearer ${await this.tokenFrom(auth.path)}`;
        break;
      case 'basic':
        headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
        break;
      case 'client-node': {
        if (!this.clientNode) {
          this.clientNode = clientNodeAuth(this.connection.server, auth.userName, auth.user);
          // A failed import or a bad plugin configuration is tried again on the next call.
          this.clientNode.catch(() => { this.clientNode = undefined; });
        }
        const got = await (await this.clientNode)();
        Object.assign(headers, got.headers);
        this.usePluginCertificate(got.cert, got.key);
        break;
      }
    }
    return headers;
  }

  /** The token in the file, read again whenever the file changed (the kubelet rotates it). */
  private async tokenFrom(file: string): Promise<string> {
    try {
      const info = await stat(file);
      const version = `${info.ino}:${info.mtimeMs}:${info.size}`;
      if (this.token?.version !== version) this.token = { value: (await readFile(file, 'utf8')).trim(), version };
    } catch (error) {
      // Mid-rotation the file may be missing for a moment: the last token is still good.
      if (!this.token) throw error;
    }
    return this.token.value;
  }

  /** A plugin that hands out client certificates renews them: a new one gets a new pool. */
  private usePluginCertificate(cert: Buffer | undefined, key: Buffer | undefined): void {
    if (!cert || !key) return;
    const id = `${cert.toString('base64')}:${key.toString('base64')}`;
    if (id === this.pluginCert) return;
    const old = this.dispatcher;
    this.dispatcher = this.makeDispatcher(cert, key);
    this.pluginCert = id;
    void old.close().catch(() => undefined);
  }
}

/** The body as text, chunk by chunk; a character split between two chunks is decoded whole. */
async function* utf8(body: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  for await (const chunk of body) {
    const text = decoder.write(chunk);
    if (text) yield text;
  }
  const last = decoder.end();
  if (last) yield last;
}

function bodyOf(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * client-node's KubeConfig for one user whose credentials come from a plugin or an auth
 * provider: it runs them (and caches what they hand out); the headers and client certificate it
 * puts on a request are taken from it.
 */
async function clientNodeAuth(server: string, userName: string, user: Readonly<Record<string, unknown>>): Promise<() => Promise<ClientNodeAuth>> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  const name = userName || 'user';
  kubeConfig.loadFromString(stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'keelson',
    clusters: [{ name: 'keelson', cluster: { server } }],
    users: [{ name, user }],
    contexts: [{ name: 'keelson', context: { cluster: 'keelson', user: name } }],
  }));
  return async () => {
    const options: { headers?: Record<string, unknown>; cert?: unknown; key?: unknown } = {};
    await kubeConfig.applyToHTTPSOptions(options as never);
    const headers: Headers = {};
    for (const [key, value] of Object.entries(options.headers ?? {})) if (value !== undefined) headers[key.toLowerCase()] = String(value);
    const asBuffer = (v: unknown): Buffer | undefined => (typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : undefined);
    const cert = asBuffer(options.cert);
    const key = asBuffer(options.key);
    return { headers, ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  };
}
