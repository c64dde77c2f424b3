import { z } from 'zod';
import { InputError } from '../errors.js';

/** On a workload: the Deployments/StatefulSets its tests need, `name=replicas,...` in its namespace. */
export const DEPENDENCIES_ANNOTATION = 'keelson.dev/dependencies';
/** On a dependency: who is using it (a lease set, see src/rollout/lease.ts). */
export const DEPENDENCY_LEASE_ANNOTATION = 'keelson.dev/leases';

export type DependencyKind = 'Deployment' | 'StatefulSet';

export interface DependencySpec {
  /** Unset: a Deployment of that name, else a StatefulSet */
  readonly kind?: DependencyKind;
  readonly name: string;
  readonly replicas: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** One `[deployment/|statefulset/]name[=replicas]` item; replicas default to 1. */
export const DependencyItem = z.string().trim().transform((text, ctx): DependencySpec => {
  const match = /^(?:(deployment|deploy|statefulset|sts)\/)?([^=\s]+)(?:=(\d+))?$/i.exec(text);
  if (!match || !DNS_LABEL.test(match[2]!) || match[2]!.length > 253) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not [deployment/|statefulset/]NAME[=REPLICAS] (e.g. minio=1)` });
    return z.NEVER;
  }
  const replicas = match[3] === undefined ? 1 : Number(match[3]);
  if (replicas < 1) {
    ctx.addIssue({ code: 'custom', message: `"${text}": replicas must be at least 1` });
    return z.NEVER;
  }
  const kindText = match[1]?.toLowerCase();
  const kind: DependencyKind | undefined = kindText === undefined ? undefined : kindText.startsWith('s') ? 'StatefulSet' : 'Deployment';
  return { ...(kind ? { kind } : {}), name: match[2]!, replicas };
});

/**
 * Parses `minio=1,rabbitmq=1` (commas or whitespace between items). `where` names the source for
 * the error (`default/deployment/build: keelson.dev/dependencies`, `--dependency`).
 */
export function parseDependencies(where: string, text: string): DependencySpec[] {
  const items = text.split(/[,\s]+/).filter((s) => s !== '');
  const out: DependencySpec[] = [];
  const problems: string[] = [];
  for (const item of items) {
    const parsed = DependencyItem.safeParse(item);
    if (parsed.success) out.push(parsed.data);
    else problems.push(parsed.error.issues[0]?.message ?? `bad item "${item}"`);
  }
  const seen = new Set<string>();
  for (const d of out) {
    if (seen.has(d.name)) problems.push(`"${d.name}" is listed twice`);
    seen.add(d.name);
  }
  if (problems.length > 0) throw new InputError(where, problems.join('; '));
  return out;
}
