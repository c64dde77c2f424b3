import type { V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '../kube/index.js';
import { statusOf } from '../rollout/index.js';
import type { KubeWorkload } from '../rollout/index.js';

/** `minio-s3` -> `MINIO_S3`: the part of the variable names that names the dependency. */
export function envName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * The variables for one dependency's Service, Kubernetes-style:
 * `KEELSON_DEP_<NAME>_HOST` (the cluster IP, or the service DNS name for a headless service),
 * `_PORT` (the first port), `_PORT_<PORTNAME>` for each named port, and `_DNS` (`name.ns.svc`).
 */
export function serviceEnv(dependency: string, service: V1Service): Record<string, string> {
  const prefix = `KEELSON_DEP_${envName(dependency)}`;
  const namespace = service.metadata?.namespace ?? 'default';
  const dns = `${service.metadata?.name ?? dependency}.${namespace}.svc`;
  const ip = service.spec?.clusterIP;
  const env: Record<string, string> = {
    [`${prefix}_HOST`]: ip && ip !== 'None' ? ip : dns,
    [`${prefix}_DNS`]: dns,
  };
  const ports = service.spec?.ports ?? [];
  if (ports[0]) env[`${prefix}_PORT`] = String(ports[0].port);
  for (const port of ports) if (port.name) env[`${prefix}_PORT_${envName(port.name)}`] = String(port.port);
  return env;
}

function selects(service: V1Service, labels: Readonly<Record<string, string>>): boolean {
  const selector = service.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * Finds the Service of a dependency: the one with the same name, else one whose selector picks
 * the dependency's pods. Undefined when there is none (the run still gets the other variables).
 */
export async function findService(kube: KubeClient, namespace: string, dependency: string, workload: KubeWorkload): Promise<V1Service | undefined> {
  try {
    return await kube.request<V1Service>('GET', `/api/v1/namespaces/${namespace}/services/${encodeURIComponent(dependency)}`);
  } catch (error) {
    if (statusOf(error) !== 404) throw error;
  }
  const labels = workload.spec?.template?.metadata?.labels ?? {};
  const services = await kube.request<{ items?: V1Service[] }>('GET', `/api/v1/namespaces/${namespace}/services`);
  return (services.items ?? []).find((s) => selects(s, labels));
}
