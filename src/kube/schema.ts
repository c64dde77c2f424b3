import { z } from 'zod';

/**
 * A kubeconfig file, as far as keelson reads it (kubectl's field names). Only the fields used
 * are declared; others are let through. Lists may be null or missing (kubectl writes `null`).
 */
export const KubeconfigCluster = z.looseObject({
  server: z.string().min(1, 'expected the API server URL'),
  'certificate-authority': z.string().optional(),
  'certificate-authority-data': z.string().optional(),
  'insecure-skip-tls-verify': z.boolean().optional(),
  'tls-server-name': z.string().optional(),
  'proxy-url': z.string().optional(),
});
export type KubeconfigCluster = z.infer<typeof KubeconfigCluster>;

export const KubeconfigUser = z.looseObject({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  'client-certificate': z.string().optional(),
  'client-certificate-data': z.string().optional(),
  'client-key': z.string().optional(),
  'client-key-data': z.string().optional(),
  /** Credential plugins and auth providers are left to client-node's KubeConfig. */
  exec: z.looseObject({ command: z.string().min(1) }).optional(),
  'auth-provider': z.looseObject({ name: z.string().min(1) }).optional(),
  as: z.string().optional(),
});
export type KubeconfigUser = z.infer<typeof KubeconfigUser>;

export const KubeconfigContext = z.looseObject({
  cluster: z.string().min(1),
  user: z.string().optional(),
  namespace: z.string().optional(),
});
export type KubeconfigContext = z.infer<typeof KubeconfigContext>;

export const KubeconfigFile = z.looseObject({
  clusters: z.array(z.looseObject({ name: z.string().min(1), cluster: KubeconfigCluster })).nullish(),
  users: z.array(z.looseObject({ name: z.string().min(1), user: KubeconfigUser.nullish() })).nullish(),
  contexts: z.array(z.looseObject({ name: z.string().min(1), context: KubeconfigContext })).nullish(),
  'current-context': z.string().nullish(),
});
export type KubeconfigFile = z.infer<typeof KubeconfigFile>;

/** A Kubernetes Status (the body of a failed API call, and of a watch ERROR event). */
export const KubeStatus = z.looseObject({
  kind: z.literal('Status').optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
});
export type KubeStatus = z.infer<typeof KubeStatus>;
