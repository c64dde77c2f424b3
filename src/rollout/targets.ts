import { Duration } from '../domain/index.js';
import type { ContainerImage } from './plan.js';
import type { WorkloadSettings } from './schema.js';
import type { ImageTarget, TargetMode } from './types.js';

/** One watched workload as the target computation needs it. */
export interface TargetSource {
  readonly key: string;
  readonly settings: Pick<WorkloadSettings, 'policy' | 'trigger' | 'pollSchedule' | 'matchTag' | 'matchPreRelease'>;
  readonly images: readonly ContainerImage[];
}

function intervalOf(schedule: string): number | undefined {
  return schedule.startsWith('@every') ? Duration.tryParse(schedule)?.milliseconds : undefined;
}

/** The more frequent of two schedules when both are `@every`; otherwise a stable pick. */
function pickSchedule(a: string, b: string): string {
  const ia = intervalOf(a);
  const ib = intervalOf(b);
  if (ia !== undefined && ib !== undefined) return ia <= ib ? a : b;
  if (ia !== undefined) return a;
  if (ib !== undefined) return b;
  return a <= b ? a : b;
}

/**
 * The registry watcher's targets: one per distinct (repository, tag, mode) whatever the number of
 * workloads that run it. Only `keel.sh/trigger: poll` workloads are polled, as in Keel (the others
 * roll on webhooks). When workloads disagree on the schedule the most frequent wins, so nobody
 * waits longer than asked.
 */
export function computeTargets(sources: Iterable<TargetSource>): ImageTarget[] {
  const byKey = new Map<string, { repository: string; tag: string; mode: TargetMode; schedule: string; digests: Set<string | undefined>; workloads: Set<string> }>();
  for (const source of sources) {
    if (source.settings.trigger !== 'poll') continue;
    for (const image of source.images) {
      const mode = source.settings.policy.watchMode(image.tag, { matchTag: source.settings.matchTag, matchPreRelease: source.settings.matchPreRelease });
      if (mode === 'none') continue;
      const key = `${image.repository}\u0000${image.tag}\u0000${mode}`;
      const entry = byKey.get(key);
      if (!entry) {
        byKey.set(key, {
          repository: image.repository, tag: image.tag, mode, schedule: source.settings.pollSchedule,
          digests: new Set([image.digest]), workloads: new Set([source.key]),
        });
        continue;
      }
      entry.schedule = pickSchedule(entry.schedule, source.settings.pollSchedule);
      entry.digests.add(image.digest);
      entry.workloads.add(source.key);
    }
  }
  return [...byKey.values()]
    .map((e) => {
      const [digest] = e.digests;
      return {
        repository: e.repository,
        tag: e.tag,
        // A digest only when every workload is pinned to the same one.
        ...(e.digests.size === 1 && digest ? { digest } : {}),
        schedule: e.schedule,
        mode: e.mode,
        workloads: [...e.workloads].sort(),
      };
    })
    .sort((a, b) => `${a.repository}:${a.tag}:${a.mode}`.localeCompare(`${b.repository}:${b.tag}:${b.mode}`));
}
