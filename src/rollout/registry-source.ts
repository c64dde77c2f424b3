import { messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log/index.js';
import { parseSchedule, type RegistryChange, type RegistryWatcher, type Schedule } from '../registry-watch/index.js';
import type { ImageEventSource, ImageUpdate, WorkloadImageTarget } from './types.js';

/**
 * Connects the controller to src/registry-watch: the workload targets become the watcher's
 * targets (added, updated and removed by id, so its baselines survive), and each RegistryChange
 * becomes an ImageUpdate. A target the watcher refuses is logged and left out; the others go on.
 */
export class RegistryWatcherSource implements ImageEventSource {
  /** The targets handed to the watcher, by id, as last handed */
  private known = new Map<string, WorkloadImageTarget>();
  /** Parsed once per distinct text: ten thousand workloads share a handful of schedules. */
  private readonly schedules = new Map<string, Schedule>();
  private readonly logger: Logger;

  constructor(private readonly watcher: Pick<RegistryWatcher, 'addTarget' | 'removeTarget' | 'subscribe'>, logger?: Logger) {
    this.logger = (logger ?? silentLogger()).child({ part: 'rollout-source' });
  }

  /**
   * Hands the watcher the targets that are new or changed and removes those that are gone. The
   * controller calls this with every target after each change of a workload: during a rollout of
   * a hundred Deployments among ten thousand, re-adding the unchanged ones each time was ten
   * thousand new objects per call for the collector (the daemon's peak RSS).
   */
  setTargets(targets: readonly WorkloadImageTarget[]): void {
    const next = new Map<string, WorkloadImageTarget>();
    for (const target of targets) {
      const previous = this.known.get(target.id);
      if (previous && sameTarget(previous, target)) {
        next.set(target.id, previous);
        continue;
      }
      try {
        this.watcher.addTarget({
          id: target.id,
          repository: target.repository,
          current: target.current,
          ...(target.currentDigest ? { currentDigest: target.currentDigest } : {}),
          policy: target.policy,
          matchTag: target.matchTag,
          matchPreRelease: target.matchPreRelease,
          schedule: this.schedule(target),
        });
        next.set(target.id, target);
      } catch (error) {
        this.logger.error({ target: target.id, err: messageOf(error) }, 'target not watched');
      }
    }
    for (const id of this.known.keys()) if (!next.has(id)) this.watcher.removeTarget(id);
    this.known = next;
  }

  private schedule(target: WorkloadImageTarget): Schedule {
    let schedule = this.schedules.get(target.schedule);
    if (!schedule) {
      schedule = parseSchedule(target.schedule, `${target.id}: keel.sh/pollSchedule`);
      this.schedules.set(target.schedule, schedule);
    }
    return schedule;
  }

  onUpdate(listener: (update: ImageUpdate) => void | Promise<void>): () => void {
    // Returned, not dropped: the watcher saves its baseline only once the listener is done.
    return this.watcher.subscribe((change: RegistryChange) => listener({
      repository: change.repository,
      tag: change.newTag,
      ...(change.newDigest ? { digest: change.newDigest } : {}),
      ...(change.oldDigest && change.oldTag === change.newTag ? { previousDigest: change.oldDigest } : {}),
      seenAt: new Date().toISOString(),
    }));
  }
}

/** The policy is the workload's parsed settings: the same object while its annotations stay. */
function sameTarget(a: WorkloadImageTarget, b: WorkloadImageTarget): boolean {
  return a.repository === b.repository && a.current === b.current && a.currentDigest === b.currentDigest && a.policy === b.policy
    && a.matchTag === b.matchTag && a.matchPreRelease === b.matchPreRelease && a.schedule === b.schedule;
}
