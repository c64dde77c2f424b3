import type { BuilderPrivilege } from '../../config/index.js';

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;
}

function list(value: unknown): Obj[] {
  return Array.isArray(value) ? value.map(obj).filter((v): v is Obj => v !== undefined) : [];
}

/** One thing a Job asks for that its source was not allowed: which privilege, and where. */
export interface BuilderJobProblem {
  readonly privilege: BuilderPrivilege;
  readonly where: string;
}

/**
 * What a builder Job rendered for a repository's own pipeline asks for beyond an ordinary pod:
 * privileged containers (or an unmasked /proc, or seccomp/AppArmor/SELinux switched off), host namespaces and host ports, hostPath
 * volumes, added capabilities, a service account other than the namespace's default. Each is a
 * problem unless `allowed` holds its privilege. Reads the object as rendered (plain YAML), so a
 * field the API server would accept under another spelling is not missed: the pod template is
 * the only place a Job's pods come from.
 */
export function builderJobProblems(job: unknown, allowed: ReadonlySet<BuilderPrivilege>): BuilderJobProblem[] {
  const problems: BuilderJobProblem[] = [];
  const add = (privilege: BuilderPrivilege, where: string): void => {
    if (!allowed.has(privilege)) problems.push({ privilege, where });
  };
  const pod = obj(obj(obj(obj(job)?.spec)?.template)?.spec) ?? {};
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod[field] === true) add('hostNamespaces', `spec.template.spec.${field}`);
  }
  if (pod.hostUsers === true) add('hostNamespaces', 'spec.template.spec.hostUsers');
  unconfined(obj(pod.securityContext), 'spec.template.spec.securityContext').forEach((where) => add('privileged', where));
  for (const field of ['serviceAccountName', 'serviceAccount'] as const) {
    const name = pod[field];
    if (typeof name === 'string' && name !== '' && name !== 'default') add('serviceAccount', `spec.template.spec.${field}`);
  }
  list(pod.volumes).forEach((volume, i) => {
    if (volume.hostPath !== undefined) add('hostPath', `spec.template.spec.volumes[${i}] (${String(volume.name ?? i)})`);
  });
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    list(pod[kind]).forEach((container, i) => {
      const where = `spec.template.spec.${kind}[${i}] (${String(container.name ?? i)})`;
      const security = obj(container.securityContext) ?? {};
      if (security.privileged === true) add('privileged', `${where}.securityContext.privileged`);
      if (security.procMount === 'Unmasked') add('privileged', `${where}.securityContext.procMount`);
      unconfined(security, `${where}.securityContext`).forEach((path) => add('privileged', path));
      const capabilities = obj(security.capabilities);
      if (Array.isArray(capabilities?.add) && capabilities.add.length > 0) add('capabilities', `${where}.securityContext.capabilities.add`);
      list(container.ports).forEach((port, p) => {
        if (port.hostPort !== undefined && port.hostPort !== 0) add('hostNamespaces', `${where}.ports[${p}].hostPort`);
      });
    });
  }
  return problems;
}

/** Switching off the kernel's confinement (seccomp, AppArmor, SELinux's super-privileged type) is as good as privileged. */
function unconfined(security: Obj | undefined, where: string): string[] {
  if (!security) return [];
  const found: string[] = [];
  if (obj(security.seccompProfile)?.type === 'Unconfined') found.push(`${where}.seccompProfile`);
  if (obj(security.appArmorProfile)?.type === 'Unconfined') found.push(`${where}.appArmorProfile`);
  if (obj(security.seLinuxOptions)?.type === 'spc_t') found.push(`${where}.seLinuxOptions`);
  return found;
}
