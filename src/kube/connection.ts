import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { isIPv6 } from 'node:net';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { InputError, messageOf } from '../errors.js';
import { KubeconfigFile, type KubeconfigCluster, type KubeconfigContext, type KubeconfigUser } from './schema.js';
import type { KubeAuth, KubeConnection } from './types.js';

export interface ResolveOptions {
  /** `--kubeconfig`: this file only. @default KUBECONFIG, else ~/.kube/config, else the pod's service account */
  readonly file?: string;
  /** A context other than the kubeconfig's current-context. @default current-context */
  readonly context?: string;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default the user's home directory */
  readonly home?: string;
  /** @default /var/run/secrets/kubernetes.io/serviceaccount */
  readonly serviceAccountDir?: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Where the API server is and who we are, the way kubectl finds it: the file given, else the
 * files of KUBECONFIG merged (the first file to set a name or the current-context wins), else
 * ~/.kube/config, else the pod's service account. Relative paths in a kubeconfig are relative
 * to that file's folder. A bad kubeconfig is an InputError naming the file and field (exit 2).
 */
export function resolveKubeConnection(options: ResolveOptions = {}): KubeConnection {
  const env = options.env ?? process.env;
  if (options.file !== undefined) return fromKubeconfigs([path.resolve(options.file)], options.context);
  const listed = (env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f.length > 0);
  if (listed.length > 0) return fromKubeconfigs(listed.map((f) => path.resolve(f)), options.context);
  const home = options.home ?? env.HOME ?? homedir();
  const defaultFile = path.join(home, '.kube', 'config');
  if (existsSync(defaultFile)) return fromKubeconfigs([defaultFile], options.context);
  const serviceAccountDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (existsSync(path.join(serviceAccountDir, 'token'))) return inCluster(serviceAccountDir, env);
  throw new InputError('kubeconfig', `none found: pass --kubeconfig, set KUBECONFIG, write ${defaultFile}, or run in a pod with a service account`);
}

/** The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its CA, token (re-read as it rotates) and namespace. */
function inCluster(dir: string, env: Readonly<Record<string, string | undefined>>): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new InputError('in-cluster config', 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (they are in a pod)');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const caFile = path.join(dir, 'ca.crt');
  const namespaceFile = path.join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  return {
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    ...(existsSync(caFile) ? { ca: readFileOf('in-cluster config', 'ca.crt', caFile) } : {}),
    insecureSkipTlsVerify: false,
    ...(namespace ? { namespace } : {}),
    auth: { kind: 'token-file', path: path.join(dir, 'token') },
    source: 'in-cluster',
  };
}

interface Merged {
  readonly clusters: Map<string, { cluster: KubeconfigCluster; file: string }>;
  readonly users: Map<string, { user: KubeconfigUser; file: string }>;
  readonly contexts: Map<string, { context: KubeconfigContext; file: string }>;
  currentContext?: string;
}

function fromKubeconfigs(files: readonly string[], wantedContext: string | undefined): KubeConnection {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    const config = readKubeconfig(file);
    if (!config) continue;
    const dir = path.dirname(file);
    merged.currentContext ||= config['current-context'] ?? undefined;
    for (const { name, cluster } of config.clusters ?? []) {
      if (!merged.clusters.has(name)) merged.clusters.set(name, { cluster: absoluteCluster(cluster, dir), file });
    }
    for (const { name, user } of config.users ?? []) {
      if (!merged.users.has(name)) merged.users.set(name, { user: absoluteUser(user ?? {}, dir), file });
    }
    for (const { name, context } of config.contexts ?? []) {
      if (!merged.contexts.has(name)) merged.contexts.set(name, { context, file });
    }
  }
  const where = files.join(path.delimiter);
  const contextName = wantedContext ?? merged.currentContext;
  if (!contextName) throw new InputError(where, 'current-context: not set (choose one with kubectl config use-context)');
  const context = merged.contexts.get(contextName);
  if (!context) {
    const known = [...merged.contexts.keys()];
    throw new InputError(where, `context "${contextName}" is not defined${known.length > 0 ? ` (contexts: ${known.join(', ')})` : ''}`);
  }
  const cluster = merged.clusters.get(context.context.cluster);
  if (!cluster) throw new InputError(context.file, `context "${contextName}": cluster "${context.context.cluster}" is not defined`);
  const userName = context.context.user;
  const user = userName === undefined ? undefined : merged.users.get(userName);
  if (userName !== undefined && !user) throw new InputError(context.file, `context "${contextName}": user "${userName}" is not defined`);
  const c = cluster.cluster;
  const u = user?.user ?? {};
  const clusterWhere = `clusters["${context.context.cluster}"].cluster`;
  const userWhere = `users["${userName ?? ''}"].user`;
  const proxyUrl = c['proxy-url'];
  if (proxyUrl !== undefined && !/^https?:\/\//.test(proxyUrl)) {
    throw new InputError(cluster.file, `${clusterWhere}.proxy-url: "${proxyUrl}" is not an http:// or https:// proxy`);
  }
  if (!/^https?:\/\/[^/]/.test(c.server)) throw new InputError(cluster.file, `${clusterWhere}.server: "${c.server}" is not an http:// or https:// URL`);
  const ca = pem(cluster.file, `${clusterWhere}.certificate-authority`, c['certificate-authority-data'], c['certificate-authority']);
  const cert = pem(user?.file ?? '', `${userWhere}.client-certificate`, u['client-certificate-data'], u['client-certificate']);
  const key = pem(user?.file ?? '', `${userWhere}.client-key`, u['client-key-data'], u['client-key']);
  return {
    server: c.server.replace(/\/+$/, ''),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTlsVerify: c['insecure-skip-tls-verify'] === true,
    ...(c['tls-server-name'] ? { tlsServerName: c['tls-server-name'] } : {}),
    ...(proxyUrl ? { proxyUrl } : {}),
    ...(context.context.namespace ? { namespace: context.context.namespace } : {}),
    ...(u.as ? { impersonate: u.as } : {}),
    auth: authOf(u, userName ?? ''),
    source: `${where} (context ${contextName})`,
  };
}

function authOf(user: KubeconfigUser, name: string): KubeAuth {
  if (user.exec || user['auth-provider']) return { kind: 'client-node', user, userName: name };
  // As client-go: a token file, read again as it changes, takes precedence over a token.
  if (user.tokenFile) return { kind: 'token-file', path: user.tokenFile };
  if (user.token) return { kind: 'token', token: user.token };
  if (user.username !== undefined && user.password !== undefined) return { kind: 'basic', username: user.username, password: user.password };
  return { kind: 'none' };
}

/** The checked kubeconfig; undefined for an empty file (kubectl skips those too). */
function readKubeconfig(file: string): z.infer<typeof KubeconfigFile> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(file, `cannot read the kubeconfig: ${messageOf(error)}`, { cause: error });
  }
  const document = parseDocument(text);
  const yamlError = document.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw new InputError(line ? `${file}:${line}` : file, `not valid YAML: ${yamlError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const raw: unknown = document.toJS();
  if (raw === null || raw === undefined) return undefined;
  const parsed = KubeconfigFile.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${fieldPath(raw, issue.path)}: ${issue.message}`);
    throw new InputError(file, problems.join('; '));
  }
  return parsed.data;
}

/** `users["admin"].user.token` rather than `users.0.user.token`: entries are known by name. */
function fieldPath(raw: unknown, issuePath: readonly PropertyKey[]): string {
  let out = '';
  let node: unknown = raw;
  for (const key of issuePath) {
    const next = (node as Record<PropertyKey, unknown> | undefined)?.[key as never];
    if (typeof key === 'number') {
      const name = (next as { name?: unknown } | undefined)?.name;
      out += typeof name === 'string' ? `["${name}"]` : `[${key}]`;
    } else {
      out += out ? `.${String(key)}` : String(key);
    }
    node = next;
  }
  return out || '(top level)';
}

function absolute(dir: string, file: string | undefined): string | undefined {
  return file === undefined || file === '' ? undefined : path.resolve(dir, file);
}

function absoluteCluster(cluster: KubeconfigCluster, dir: string): KubeconfigCluster {
  const ca = absolute(dir, cluster['certificate-authority']);
  return { ...cluster, ...(ca ? { 'certificate-authority': ca } : {}) };
}

function absoluteUser(user: KubeconfigUser, dir: string): KubeconfigUser {
  const cert = absolute(dir, user['client-certificate']);
  const key = absolute(dir, user['client-key']);
  const tokenFile = absolute(dir, user.tokenFile);
  // kubectl runs a plugin named with a path relative to the kubeconfig; a bare name is looked up in PATH.
  const command = user.exec?.command;
  const exec = user.exec && command && command.includes('/') && !path.isAbsolute(command) ? { ...user.exec, command: path.resolve(dir, command) } : user.exec;
  return {
    ...user,
    ...(cert ? { 'client-certificate': cert } : {}),
    ...(key ? { 'client-key': key } : {}),
    ...(tokenFile ? { tokenFile } : {}),
    ...(exec ? { exec } : {}),
  };
}

/** A PEM from its `-data` field (base64, which wins, as in kubectl) or its file. */
function pem(file: string, field: string, data: string | undefined, fromFile: string | undefined): Buffer | undefined {
  if (data !== undefined && data !== '') {
    const decoded = Buffer.from(data, 'base64');
    if (!decoded.toString('latin1').includes('-----BEGIN ')) throw new InputError(file, `${field}-data: not a base64-encoded PEM`);
    return decoded;
  }
  return fromFile === undefined ? undefined : readFileOf(file, field, fromFile);
}

function readFileOf(file: string, field: string, target: string): Buffer {
  try {
    return readFileSync(target);
  } catch (error) {
    throw new InputError(file, `${field}: cannot read ${target}: ${messageOf(error)}`, { cause: error });
  }
}
