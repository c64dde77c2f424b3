import { expect } from 'chai';
import type { BuilderPrivilege } from '../../../src/config/index.js';
import { builderJobProblems } from '../../../src/executor/kubernetes/job-policy.js';

function job(pod: Record<string, unknown>): unknown {
  return { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'b' }, spec: { template: { spec: { containers: [{ name: 'b', image: 'x' }], ...pod } } } };
}

describe('builder Job of a repository pipeline', () => {
  const none = new Set<BuilderPrivilege>();
  const cases: Array<[string, Record<string, unknown>, BuilderPrivilege]> = [
    ['a privileged container', { containers: [{ name: 'b', securityContext: { privileged: true } }] }, 'privileged'],
    ['an unmasked /proc', { initContainers: [{ name: 'i', securityContext: { procMount: 'Unmasked' } }] }, 'privileged'],
    ['an unconfined seccomp profile', { securityContext: { seccompProfile: { type: 'Unconfined' } } }, 'privileged'],
    ['an unconfined AppArmor profile', { containers: [{ name: 'b', securityContext: { appArmorProfile: { type: 'Unconfined' } } }] }, 'privileged'],
    ['the super-privileged SELinux type', { containers: [{ name: 'b', securityContext: { seLinuxOptions: { type: 'spc_t' } } }] }, 'privileged'],
    ['the host network', { hostNetwork: true }, 'hostNamespaces'],
    ['the host PID namespace', { hostPID: true }, 'hostNamespaces'],
    ['the host IPC namespace', { hostIPC: true }, 'hostNamespaces'],
    ['a host port', { containers: [{ name: 'b', ports: [{ containerPort: 80, hostPort: 80 }] }] }, 'hostNamespaces'],
    ['a hostPath volume', { volumes: [{ name: 'root', hostPath: { path: '/' } }] }, 'hostPath'],
    ['added capabilities', { containers: [{ name: 'b', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] }, 'capabilities'],
    ['another service account', { serviceAccountName: 'keelson' }, 'serviceAccount'],
  ];
  for (const [what, pod, privilege] of cases) {
    it(`refuses ${what} unless the operator allows ${privilege}`, () => {
      expect(builderJobProblems(job(pod), none).map((p) => p.privilege)).to.deep.equal([privilege]);
      expect(builderJobProblems(job(pod), new Set([privilege]))).to.deep.equal([]);
    });
  }

  it('accepts an ordinary builder pod: PVC and Secret volumes, dropped capabilities, the default account', () => {
    const pod = {
      serviceAccountName: 'default',
      containers: [{ name: 'b', securityContext: { privileged: false, capabilities: { drop: ['ALL'] } } }],
      volumes: [{ name: 's', persistentVolumeClaim: { claimName: 'source' } }, { name: 'a', secret: { secretName: 'registry-auth' } }],
    };
    expect(builderJobProblems(job(pod), none)).to.deep.equal([]);
  });
});
