import type { KeelsonFile } from '../config/index.js';
import { adoptAliasState, parseWatchSpec, resolveWatch, type WatchSpec } from '../git/index.js';
import type { Logger } from '../log/index.js';
import type { StateStore } from '../store/index.js';

/**
 * The watches as the watcher keys them: each spelling of a repository and its default branch
 * resolved to `<repository>^<branch>`, taking over state an older key (`^HEAD`) recorded.
 */
export async function resolveWatches(specs: readonly WatchSpec[], state: StateStore, logger: Logger): Promise<WatchSpec[]> {
  const resolved = await Promise.all(specs.map((spec) => resolveWatch(spec, undefined, logger)));
  for (const watch of resolved) await adoptAliasState(state, watch);
  return resolved.map((watch) => watch.spec);
}

/**
 * The watches of a config file, each with its own `schedule:` when it has one. A `--schedule`
 * flag is the operator's word for this start and wins over every schedule in the file.
 */
export function configuredWatches(file: KeelsonFile | undefined, scheduleFlag: string | undefined): WatchSpec[] {
  return (file?.watches ?? []).map((entry) => {
    const spec = parseWatchSpec(entry.repo);
    return entry.schedule !== undefined && scheduleFlag === undefined ? { ...spec, schedule: entry.schedule } : spec;
  });
}
