import type { V1Deployment } from '@kubernetes/client-node';

export interface DeploymentOptions {
  readonly name: string;
  readonly image: string;
  readonly namespace?: string;
  /** @default 1 */
  readonly replicas?: number;
  readonly annotations?: Record<string, string>;
  /** @default 'app' */
  readonly container?: string;
  readonly command?: string[];
  /** Extra pod spec fields (nodeSelector...) */
  readonly podSpec?: Record<string, unknown>;
}

/** A one-container Deployment selected by `app: <name>`, the shape every cluster test needs. */
export function deploymentBody(options: DeploymentOptions): V1Deployment {
  const { name } = options;
  return {
    metadata: { name, ...(options.namespace ? { namespace: options.namespace } : {}), ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      replicas: options.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: options.container ?? 'app', image: options.image, ...(options.command ? { command: options.command } : {}) }],
          ...options.podSpec,
        },
      },
    },
  };
}
