/**
 * The Kubernetes API for the daemon's steady state: connection settings from a kubeconfig or
 * the pod (resolveKubeConnection), calls and watches over undici (KubeClient), list-then-watch
 * (ListWatcher). client-node is loaded only for credential plugins and auth providers.
 */
import { resolveKubeConnection, type ResolveOptions } from './connection.js';
import { HttpKubeClient } from './http-client.js';
import type { KubeClient, KubeConnection } from './types.js';

export { resolveKubeConnection, type ResolveOptions } from './connection.js';
export { ListWatcher, type ListWatchOptions } from './informer.js';
export { KubeApiError, statusOf, apiMessage } from './errors.js';
export type { KubeClient, KubeConnection, KubeAuth, KubeRequest, ListMeta, QueryValue, WatchEvent } from './types.js';

/** A client for these connection settings. */
export function createKubeClient(connection: KubeConnection): KubeClient {
  return new HttpKubeClient(connection);
}

/** A client for the kubeconfig given (or found: see resolveKubeConnection). Throws InputError for a bad one. */
export function connectKube(options: ResolveOptions = {}): KubeClient {
  return createKubeClient(resolveKubeConnection(options));
}

/** Content types of the patches keelson sends. */
export const PatchType = {
  StrategicMerge: 'application/strategic-merge-patch+json',
  Merge: 'application/merge-patch+json',
  Json: 'application/json-patch+json',
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];
