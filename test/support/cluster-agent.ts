/**
 * The two cluster duties that kwok leaves to us, run next to a kwok test cluster:
 *
 * - **Exec rules.** kwok runs `kubectl exec` commands on the host, in the `workDir` of a matching
 *   ClusterExec. kwok 0.8 has no per-pod templating of that directory, so the agent creates one
 *   ClusterExec per namespace (`keelson-ns-<namespace>`, workDir `<workdir>/ns/<namespace>/exec`).
 *   A command that a real container would run in its `workingDir` (say `/workspace`, the mounted
 *   PVC) then runs in that namespace's own host directory, and a test can look at what landed.
 * - **Volumes.** kwok has no storage; a pod whose PVC stays unbound is never scheduled. The agent
 *   is a minimal dynamic provisioner for the default StorageClass `keelson-local` (what microk8s'
 *   hostpath provisioner does for real): one hostPath PV per claim under
 *   `<workdir>/ns/<namespace>/volumes/<claim>`, deleted (with its directory) once released.
 *
 * Both watch with no resourceVersion and restart the same way after any error: the API server
 * then replays every existing object as ADDED, so a restart is also a full re-list.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch, type V1Namespace, type V1PersistentVolume, type V1PersistentVolumeClaim } from '@kubernetes/client-node';

export const STORAGE_CLASS = 'keelson-local';
export const PROVISIONER = 'keelson.test/kwok-local';

export interface ClusterAgent {
  /** Makes sure `namespace` has its exec rule and returns its host directory. */
  execDirFor(namespace: string): Promise<string>;
  stop(): Promise<void>;
}

/** `<workdir>/ns/<namespace>`: everything the agent keeps for one namespace. */
export function namespaceDir(workdir: string, namespace: string): string {
  return join(workdir, 'ns', namespace);
}

export function startClusterAgent(kubeconfigPath: string, workdir: string): ClusterAgent {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const watches: Array<() => void> = [];
  let stopped = false;

  const execDirFor = async (namespace: string): Promise<string> => {
    const dir = join(namespaceDir(workdir, namespace), 'exec');
    // kwok fails the exec when its workDir is missing, so the directory comes first.
    await mkdir(dir, { recursive: true });
    await ignoreConflict(custom.createClusterCustomObject({
      group: 'kwok.x-k8s.io',
      version: 'v1alpha1',
      plural: 'clusterexecs',
      body: {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'ClusterExec',
        metadata: { name: `keelson-ns-${namespace}` },
        spec: { selector: { matchNamespaces: [namespace] }, execs: [{ local: { workDir: dir } }] },
      },
    }));
    return dir;
  };

  const provision = async (claim: V1PersistentVolumeClaim): Promise<void> => {
    const { namespace, name, uid } = claim.metadata ?? {};
    if (!namespace || !name || !uid || claim.spec?.volumeName || claim.metadata?.deletionTimestamp) return;
    if (claim.spec?.storageClassName !== STORAGE_CLASS) return;
    // A pod that mounts the claim cannot be scheduled before the PV exists, so making the
    // namespace's exec rule first means kwok knows the rule by the time that pod runs (the
    // namespace watch alone races with a fast client: create namespace, pod, exec at once).
    await execDirFor(namespace);
    const path = join(namespaceDir(workdir, namespace), 'volumes', name);
    await mkdir(path, { recursive: true });
    await ignoreConflict(core.createPersistentVolume({
      body: {
        metadata: { name: `pvc-${uid}`, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
        spec: {
          storageClassName: STORAGE_CLASS,
          capacity: { storage: claim.spec.resources?.requests?.storage ?? '1Gi' },
          accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid },
          hostPath: { path, type: 'DirectoryOrCreate' },
        },
      },
    }));
  };

  const reclaim = async (volume: V1PersistentVolume): Promise<void> => {
    if (volume.status?.phase !== 'Released' || volume.spec?.storageClassName !== STORAGE_CLASS) return;
    if (volume.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== PROVISIONER) return;
    const path = volume.spec.hostPath?.path;
    try {
      await core.deletePersistentVolume({ name: volume.metadata.name! });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    if (path?.startsWith(`${workdir}/`)) await rm(path, { recursive: true, force: true });
  };

  const follow = <T>(path: string, onEvent: (type: string, object: T) => Promise<void>): void => {
    let abort: AbortController | undefined;
    const start = (): void => {
      if (stopped) return;
      new Watch(kc)
        .watch(path, {}, (type, object: T) => {
          if (type === 'ADDED' || type === 'MODIFIED') {
            onEvent(type, object).catch((error: unknown) => {
              // requests still in flight when the cluster goes away fail; that is no news
              if (!stopped) process.stderr.write(`cluster agent: ${path}: ${String(error)}\n`);
            });
          }
        }, () => { if (!stopped) setTimeout(start, 200); })
        .then((controller) => { abort = controller; if (stopped) controller.abort(); },
          () => { if (!stopped) setTimeout(start, 500); });
    };
    watches.push(() => abort?.abort());
    start();
  };

  follow<V1Namespace>('/api/v1/namespaces', async (_type, ns) => {
    if (ns.metadata?.name && ns.status?.phase !== 'Terminating') await execDirFor(ns.metadata.name);
  });
  follow<V1PersistentVolumeClaim>('/api/v1/persistentvolumeclaims', async (_type, claim) => provision(claim));
  follow<V1PersistentVolume>('/api/v1/persistentvolumes', async (_type, volume) => reclaim(volume));

  return {
    execDirFor,
    async stop() {
      stopped = true;
      for (const abort of watches) abort();
    },
  };
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

async function ignoreConflict(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (statusOf(error) !== 409) throw error;
  }
}
