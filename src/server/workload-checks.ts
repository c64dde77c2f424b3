import type { RegistryJobInfo, WorkloadInfo } from './types.js';

/**
 * Marks each workload container whose registry check is failing. A failing check finds no
 * candidate, so without this mark a workload whose registry is unreachable reads "up to date".
 * Registry job targets are `namespace/kind/name/container` (`init:container` for init containers).
 */
export function withRegistryChecks(workloads: readonly WorkloadInfo[], jobs: readonly RegistryJobInfo[]): WorkloadInfo[] {
  const failing = new Map<string, RegistryJobInfo>();
  for (const job of jobs) {
    if (job.failures <= 0) continue;
    for (const target of job.targetIds) failing.set(target, job);
  }
  if (failing.size === 0) return [...workloads];
  return workloads.map((w) => {
    if (!w.images?.some((image) => failing.has(`${w.key}/${image.container}`))) return w;
    return {
      ...w,
      images: w.images.map((image) => {
        const job = failing.get(`${w.key}/${image.container}`);
        return job ? { ...image, checkFailed: { failures: job.failures, lastError: job.lastError ?? 'no reason given' } } : image;
      }),
    };
  });
}
