import { Duration } from '../domain/index.js';
import { messageOf } from '../errors.js';
import type { KubeClient } from '../kube/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { approvalsPending, pushToRolloutSeconds, rolloutFailuresTotal, rolloutsTotal } from '../metrics/index.js';
import type { StateStore } from '../store/index.js';
import { CI_RESULT_ANNOTATION, CiResultAnnotation, TraceBook, type RolloutTrace } from '../trace/index.js';
import { ApprovalBook, approvalStatus, describeChanges, type Approval } from './approvals.js';
import { WorkloadDiscovery, type WorkloadListener } from './discovery.js';
import { AnnotationError } from './errors.js';
import { patchFromCache, patchOnFreshState } from './cached-patch.js';
import { DigestMemo } from './digest-memo.js';
import { EventQueue } from './event-queue.js';
import { apiMessage, WorkloadApi } from './kube.js';
import { Limiter } from './limiter.js';
import { HOLD_ANNOTATION, readHold } from './lease.js';
import { buildImagePatch, containersOf, type KubeWorkload } from './patch.js';
import { chooseTag, decideContainer, runningDigests, splitImage, watchedImages, type ContainerImage } from './plan.js';
import { isManaged, readWorkloadSettings, type WorkloadSettings } from './schema.js';
import { computeTargets } from './targets.js';
import {
  RolloutOutcome, workloadKey, type ContainerChange, type DigestResolver, type ImageEventSource, type ImageTarget,
  type ImageUpdate, type RolloutRecord, type RolloutResult, type WorkloadImageTarget, type WorkloadImageView, type WorkloadKind,
  type WorkloadRef, type WorkloadView,
} from './types.js';

export interface RolloutControllerOptions {
  /** The API server (kube/connectKube) */
  readonly kube: KubeClient;
  /** Rollout records (`rollout:<namespace>/<kind>/<name>`) and approvals */
  readonly store: StateStore;
  /** The registry watcher (or anything else that reports image changes); told the targets. @default none: drive with applyUpdate() */
  readonly source?: ImageEventSource;
  /** @default silentLogger() */
  readonly logger?: Logger;
  /** Namespaces to watch. @default [] (every namespace the credentials may list) */
  readonly namespaces?: readonly string[];
  /** Resolves a tag's digest for pinning when an update names another tag. @default none */
  readonly resolveDigest?: DigestResolver;
  /** How often pending approvals are looked at (votes come from other processes). @default 5s */
  readonly approvalInterval?: Duration;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Told every applied update and every new approval request (notifications). Must not throw. */
  readonly onResult?: (result: RolloutResult) => void;
  /** Also told every workload the discovery sees, followed or not (the dependency tracker). Must not throw. */
  readonly observers?: readonly WorkloadListener[];
  /** Workloads decided and patched at the same time, over all image changes. @default 32 */
  readonly concurrency?: number;
}

const DEFAULTS = {
  namespaces: [] as readonly string[],
  approvalInterval: Duration.ofSeconds(5),
  now: (): Date => new Date(),
  concurrency: 32,
};

/** Prefixes of the metadata that change what the controller does with a workload. */
const WATCHED_PREFIXES = ['keel.sh/', 'keelson.dev/'];
const IGNORED_KEYS = new Set(['keel.sh/update-time', 'keelson.dev/update-time', CI_RESULT_ANNOTATION]);

interface Tracked {
  readonly ref: WorkloadRef;
  /** The informer's (trimmed) copy as last seen: a rollout decides on it first */
  workload: KubeWorkload;
  readonly fingerprint: string;
  readonly settings?: WorkloadSettings;
  readonly images: readonly ContainerImage[];
  /** The hold annotation as last seen, read when asked who holds it */
  readonly hold?: string;
}

export function rolloutRecordKey(ref: WorkloadRef): string {
  return `rollout:${workloadKey(ref)}`;
}

/** The latest updates seen for a repository (`rollout-latest:<repository>`), replayed after a restart. */
export function latestUpdatesKey(repository: string): string {
  return `rollout-latest:${repository}`;
}

/** How long workload changes are gathered before the registry targets are rebuilt. */
const TARGETS_COALESCE_MS = 50;
/** The targets are rebuilt at most this often. */
const TARGETS_MIN_INTERVAL_MS = 1000;

/** Updates kept per repository: one per tag, the most recent tags. */
const LATEST_PER_REPOSITORY = 20;

function pick(map: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {}).sort()) {
    if (WATCHED_PREFIXES.some((p) => k.startsWith(p)) && !IGNORED_KEYS.has(k)) out[k] = v;
  }
  return out;
}

function refOf(kind: WorkloadKind, workload: KubeWorkload): WorkloadRef | undefined {
  const name = workload.metadata?.name;
  const namespace = workload.metadata?.namespace;
  return name && namespace ? { kind, namespace, name } : undefined;
}

function result(workload: WorkloadRef, outcome: RolloutOutcome, message: string, changes: readonly ContainerChange[] = [], approvalId?: string): RolloutResult {
  return { workload, outcome, message, changes, ...(approvalId ? { approvalId } : {}) };
}

/**
 * Keel-compatible rollouts: watches annotated Deployments, StatefulSets, DaemonSets and CronJobs,
 * tells the image source what to poll (one target per distinct image), and on each image change
 * patches the workloads whose policy accepts it, unless held by a running build or waiting for
 * approval. Work on one workload is serialised; different workloads proceed in parallel.
 */
export class RolloutController {
  readonly approvals: ApprovalBook;
  private readonly api: WorkloadApi;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly tracked = new Map<string, Tracked>();
  /** Latest update seen per `repository:tag`, replayed when a workload changes or a hold ends */
  private readonly latest = new Map<string, ImageUpdate>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly recheckTimers = new Map<string, NodeJS.Timeout>();
  /** The last decision per workload, for the status page */
  private readonly decisions = new Map<string, RolloutResult & { at: string }>();
  /** The rollout record per workload as last written or read, so a page view reads the store once per workload */
  private readonly records = new Map<string, RolloutRecord | null>();
  /** The ci-result annotation last recorded per workload */
  private readonly ciSeen = new Map<string, string>();
  private readonly traces: TraceBook;
  private readonly limiter: Limiter;
  private readonly events: EventQueue;
  private readonly digests?: DigestMemo;
  private discovery: WorkloadDiscovery | undefined;
  private unsubscribe: (() => void) | undefined;
  private approvalTimer: NodeJS.Timeout | undefined;
  private targetsTimer: NodeJS.Timeout | undefined;
  /** When the targets were last handed to the source */
  private targetsPublishedAt = 0;
  private stopping = false;

  constructor(private readonly options: RolloutControllerOptions) {
    if (!options.kube) throw new TypeError('RolloutController: kube is required');
    if (!options.store) throw new TypeError('RolloutController: store is required');
    this.api = new WorkloadApi(options.kube);
    this.approvals = new ApprovalBook(options.store);
    this.traces = new TraceBook(options.store);
    this.logger = (options.logger ?? silentLogger()).child({ part: 'rollout' });
    this.now = options.now ?? DEFAULTS.now;
    this.limiter = new Limiter(options.concurrency ?? DEFAULTS.concurrency);
    this.events = new EventQueue(this.logger, { quiet: () => this.limiter.whenIdle() });
    if (options.resolveDigest) this.digests = new DigestMemo(options.resolveDigest);
  }

  /** Lists the workloads once, then follows them; subscribes to the image source; starts the approval checks. */
  async start(): Promise<void> {
    this.stopping = false;
    const observers = this.options.observers ?? [];
    this.discovery = new WorkloadDiscovery(this.options.kube, this.options.namespaces ?? DEFAULTS.namespaces, {
      upsert: (kind, workload) => {
        for (const observer of observers) observer.upsert(kind, workload);
        this.upsert(kind, workload);
      },
      remove: (kind, workload) => {
        for (const observer of observers) observer.remove(kind, workload);
        this.remove(kind, workload);
      },
    }, this.logger);
    await this.discovery.start();
    // Awaited by the source until the update is stored, so the registry watcher moves its
    // baseline past an update only once a restart would replay it. The rollouts go on after:
    // the watcher's next checks do not wait for a thousand patches.
    this.unsubscribe = this.options.source?.onUpdate((update) => this.accept(update).then(
      () => undefined,
      (error: unknown) => this.logger.error({ err: messageOf(error), repository: update.repository }, 'image update failed'),
    ));
    await this.restoreLatest();
    this.publishTargets();
    const interval = (this.options.approvalInterval ?? DEFAULTS.approvalInterval).milliseconds;
    const tick = (): void => {
      this.approvalTimer = setTimeout(() => {
        this.checkApprovals().catch((error: unknown) => this.logger.error({ err: messageOf(error) }, 'approval check failed')).finally(() => {
          if (!this.stopping) tick();
        });
      }, interval);
    };
    tick();
    this.logger.info({ workloads: this.tracked.size, namespaces: this.options.namespaces ?? [] }, 'rollout controller started');
  }

  /** Stops watching and waits for the patches in flight, so none is left half applied. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.approvalTimer) clearTimeout(this.approvalTimer);
    if (this.targetsTimer) clearTimeout(this.targetsTimer);
    for (const timer of this.recheckTimers.values()) clearTimeout(timer);
    this.recheckTimers.clear();
    await this.discovery?.stop();
    this.discovery = undefined;
    await Promise.allSettled([...this.queues.values()]);
    await this.events.drain();
  }

  /** The distinct images polled now, one per (repository, tag, mode), with their workloads: for status pages and benchmarks. */
  targets(): ImageTarget[] {
    const sources = [...this.tracked.entries()]
      .filter(([, t]) => t.settings)
      .map(([key, t]) => ({ key, settings: t.settings!, images: t.images }));
    return computeTargets(sources);
  }

  /** Every watched container of every `keel.sh/trigger: poll` workload, for the registry watcher. */
  watchTargets(): WorkloadImageTarget[] {
    const out: WorkloadImageTarget[] = [];
    for (const [key, t] of this.tracked) {
      const s = t.settings;
      if (!s || s.trigger !== 'poll') continue;
      for (const image of t.images) {
        out.push({
          id: `${key}/${image.init ? 'init:' : ''}${image.container}`,
          repository: image.repository,
          current: image.tag,
          ...(image.digest ? { currentDigest: image.digest } : {}),
          policy: s.policy,
          matchTag: s.matchTag,
          matchPreRelease: s.matchPreRelease,
          schedule: s.pollSchedule,
        });
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * The workloads being followed, for the status page: policy, each watched container's image,
   * the candidate it would roll to, the last rollout, who holds it and the last decision.
   */
  async workloads(): Promise<WorkloadView[]> {
    const now = this.now();
    const keys = [...this.tracked.keys()].sort();
    return Promise.all(keys.map(async (key) => {
      const t = this.tracked.get(key)!;
      const record = await this.recordOf(t.ref).catch(() => undefined);
      const decision = this.decisions.get(key);
      const pending = decision && PENDING_OUTCOMES.has(decision.outcome) ? decision : undefined;
      const images = t.images.map((image): WorkloadImageView => {
        const change = pending?.changes.find((c) => c.container === image.container && c.init === image.init && c.from === image.image);
        const applied = record?.containers[image.container];
        // Adopting a baseline also writes the record; only what keelson patched counts as a rollout.
        const rolled = applied && record.lastChanges.some((c) => c.container === image.container && c.to === applied.image);
        return {
          container: image.init ? `init:${image.container}` : image.container,
          current: image.image,
          ...(change ? { candidate: change.to, candidateReason: pending!.outcome } : {}),
          ...(rolled ? { rolledOut: applied } : {}),
        };
      });
      const holders = t.hold === undefined ? [] : readHold({ [HOLD_ANNOTATION]: t.hold }, now).holders;
      const s = t.settings;
      return {
        key,
        images,
        ...(s ? { policy: s.policy.text, approvals: s.approvals, ...(s.trigger === 'poll' ? { pollSchedule: s.pollSchedule } : {}) } : { error: 'invalid annotations: see the keelson log and the workload\'s events' }),
        ...(holders.length > 0 ? { heldBy: holders } : {}),
        ...(decision ? { lastDecision: { outcome: decision.outcome, message: decision.message, at: decision.at } } : {}),
      };
    }));
  }

  /** The rollout record, read once per workload: only this controller writes it, and it keeps the copy current. */
  private async recordOf(ref: WorkloadRef): Promise<RolloutRecord | undefined> {
    const key = workloadKey(ref);
    if (!this.records.has(key)) this.records.set(key, (await this.options.store.getState<RolloutRecord>(rolloutRecordKey(ref))) ?? null);
    return this.records.get(key) ?? undefined;
  }

  private async writeRecord(ref: WorkloadRef, record: RolloutRecord): Promise<void> {
    await this.options.store.setState<RolloutRecord>(rolloutRecordKey(ref), record);
    this.records.set(workloadKey(ref), record);
  }

  /**
   * Handles one image change: every followed workload running that repository is decided (on the
   * informer's copy, re-read when that turns out stale) and patched when its policy accepts the
   * change (or held, or sent for approval). Resolves when every workload is decided.
   */
  async applyUpdate(update: ImageUpdate): Promise<RolloutResult[]> {
    return Promise.all(await this.accept(update));
  }

  /**
   * Queues the update's rollouts and stores the update (for workloads discovered later and for a
   * restart); resolves once it is stored, with each workload's decision to come. The rollouts do
   * not wait for the store: a source moves its own baseline past an update only once this
   * resolved, so keelson killed before that sees the update again, and a workload already
   * patched is then up to date.
   */
  private async accept(update: ImageUpdate): Promise<Array<Promise<RolloutResult>>> {
    const queuedAt = performance.now();
    this.latest.set(`${update.repository}:${update.tag}`, update);
    const stored = this.remember(update);
    const keys = [...this.tracked.entries()]
      .filter(([, t]) => t.settings && t.images.some((i) => i.repository === update.repository))
      .map(([key]) => key);
    const decisions = keys.map((key) => {
      const decided = this.enqueue(key, () => this.evaluate(key, update, queuedAt)).then((r) => this.told(r));
      decided.catch(() => undefined); // the caller may not wait; evaluate() reports its own failures
      return decided;
    });
    await stored;
    return decisions;
  }

  /** Applies approved updates, forgets rejected and expired ones. Runs on a timer; public for the API and tests. */
  async checkApprovals(): Promise<RolloutResult[]> {
    const now = this.now();
    const results: RolloutResult[] = [];
    const approvals = await this.approvals.list();
    approvalsPending.set(approvals.filter((a) => approvalStatus(a, now) === 'pending').length);
    for (const approval of approvals) {
      const status = approvalStatus(approval, now);
      if (status === 'approved') {
        results.push(this.told(await this.enqueue(workloadKey(approval.workload), () => this.applyApproved(approval))));
      } else if (status === 'rejected' || status === 'expired') {
        // Closed, but kept in the store so the same update is not asked for again.
        await this.approvals.close(approval, now);
        const outcome = status === 'rejected' ? RolloutOutcome.Rejected : RolloutOutcome.Expired;
        const message = `update ${status}: ${describeChanges(approval.changes)}`;
        this.logger.info({ workload: workloadKey(approval.workload), approval: approval.id, status }, 'approval closed');
        this.recordEvent(approval.workload, undefined, status === 'rejected' ? 'UpdateRejected' : 'ApprovalExpired', message);
        results.push(result(approval.workload, outcome, message, approval.changes, approval.id));
      }
    }
    return results;
  }

  /** Counts every decision; passes applied updates and new approval requests on; other outcomes are only logged. */
  private told(outcome: RolloutResult): RolloutResult {
    rolloutsTotal.inc({ outcome: outcome.outcome });
    if (outcome.outcome === RolloutOutcome.Failed) rolloutFailuresTotal.inc();
    const key = workloadKey(outcome.workload);
    // "Nothing to do" for one update says nothing about another still pending for the same workload.
    if (this.tracked.has(key) && (outcome.changes.length > 0 || !PENDING_OUTCOMES.has(this.decisions.get(key)?.outcome ?? RolloutOutcome.UpToDate))) {
      this.decisions.set(key, { ...outcome, at: this.now().toISOString() });
    }
    if (outcome.outcome === RolloutOutcome.Applied || outcome.outcome === RolloutOutcome.AwaitingApproval || outcome.outcome === RolloutOutcome.Failed) {
      try {
        this.options.onResult?.(outcome);
      } catch (error) {
        this.logger.warn({ err: messageOf(error) }, 'rollout result listener failed');
      }
    }
    return outcome;
  }

  private enqueue<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => { if (this.queues.get(key) === settled) this.queues.delete(key); });
    return next;
  }

  private upsert(kind: WorkloadKind, workload: KubeWorkload): void {
    const ref = refOf(kind, workload);
    if (!ref) return;
    const key = workloadKey(ref);
    const annotations = workload.metadata?.annotations;
    const labels = workload.metadata?.labels;
    const ciResult = annotations?.[CI_RESULT_ANNOTATION];
    if (ciResult !== undefined && this.ciSeen.get(key) !== ciResult) {
      this.ciSeen.set(key, ciResult);
      void this.enqueue(key, () => this.traceCi(ref, ciResult));
    }
    if (!isManaged(annotations, labels)) {
      if (this.tracked.delete(key)) this.publishTargets();
      return;
    }
    const images = containersOf(kind, workload, false).map((c) => c.image).join(',');
    const initImages = containersOf(kind, workload, true).map((c) => c.image).join(',');
    const fingerprint = JSON.stringify([pick(annotations), pick(labels), images, initImages]);
    const known = this.tracked.get(key);
    if (known?.fingerprint === fingerprint) {
      // Nothing to decide again, but the next rollout decides on this copy (its resourceVersion).
      known.workload = workload;
      return;
    }

    let settings: WorkloadSettings | undefined;
    try {
      settings = readWorkloadSettings(key, annotations, labels);
    } catch (error) {
      if (!(error instanceof AnnotationError)) throw error;
      this.logger.error({ workload: key, field: error.field, err: error.message }, 'workload skipped: bad annotation');
      this.recordEvent(ref, workload, 'InvalidAnnotation', error.message, 'Warning');
    }
    const hold = annotations?.[HOLD_ANNOTATION];
    this.tracked.set(key, {
      ref, workload, fingerprint, ...(settings ? { settings } : {}), images: settings ? watchedImages(kind, workload, settings) : [], ...(hold !== undefined ? { hold } : {}),
    });
    this.publishTargets();
    if (settings) this.replay(key);
  }

  private remove(kind: WorkloadKind, workload: KubeWorkload): void {
    const ref = refOf(kind, workload);
    if (!ref) return;
    const key = workloadKey(ref);
    const timer = this.recheckTimers.get(key);
    if (timer) clearTimeout(timer);
    this.recheckTimers.delete(key);
    this.decisions.delete(key);
    this.records.delete(key);
    this.ciSeen.delete(key);
    if (this.tracked.delete(key)) this.publishTargets();
  }

  /**
   * The result `keelson ci` left on a workload (keelson.dev/ci-result), added to the trace of the
   * digest it ran: the one its runtime reported, else the one keelson last rolled that image to.
   */
  private async traceCi(ref: WorkloadRef, text: string): Promise<void> {
    const key = workloadKey(ref);
    let parsed;
    try {
      parsed = CiResultAnnotation.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.logger.warn({ workload: key, annotation: CI_RESULT_ANNOTATION }, 'ignoring an unreadable ci result');
      return;
    }
    const result = parsed.data;
    const record = await this.recordOf(ref).catch(() => undefined);
    const digests = new Set<string>();
    for (const image of result.images) {
      const applied = record?.containers[image.container];
      const digest = image.digest ?? splitImage(image.container, false, image.image)?.digest ?? (applied?.image === image.image ? applied.digest : undefined);
      if (digest) digests.add(digest);
    }
    if (digests.size === 0) {
      this.logger.info({ workload: key, run: result.run }, 'ci result names no digest keelson knows; not traced');
      return;
    }
    try {
      for (const digest of digests) await this.traces.recordCi(digest, { workload: key, run: result.run, exitCode: result.exitCode, finishedAt: result.finishedAt });
      this.logger.info({ workload: key, run: result.run, exitCode: result.exitCode, digests: [...digests] }, 'ci result traced');
    } catch (error) {
      this.logger.error({ workload: key, err: messageOf(error) }, 'recording the ci result failed');
    }
  }

  /**
   * Re-decides a workload against the latest updates of its images (its settings, images or hold
   * changed, or keelson restarted). Each update offers every tag seen for the repository, so a
   * workload that missed 1.1.0 and 1.2.0 rolls once, to the one its policy picks.
   */
  private replay(key: string): void {
    const tracked = this.tracked.get(key);
    if (!tracked?.settings || this.stopping) return;
    const repositories = new Set(tracked.images.map((i) => i.repository));
    const updates = [...this.latest.values()].filter((u) => repositories.has(u.repository));
    for (const update of updates) {
      const tags = [...new Set([...(update.tags ?? [update.tag]), ...updates.filter((u) => u.repository === update.repository).map((u) => u.tag)])];
      this.enqueue(key, () => this.evaluate(key, { ...update, tags })).then((r) => this.told(r)).catch(() => undefined);
    }
  }

  /** Stores the update before anything is decided, so that a restart can replay it. */
  private async remember(update: ImageUpdate): Promise<void> {
    const key = latestUpdatesKey(update.repository);
    try {
      // Serialised per repository: two updates at once must not drop each other.
      await this.enqueue(key, async () => {
        const stored = (await this.options.store.getState<ImageUpdate[]>(key)) ?? [];
        const kept = stored.filter((u) => u.tag !== update.tag).concat([{ ...update, tags: undefined, seenAt: undefined }]).slice(-LATEST_PER_REPOSITORY);
        await this.options.store.setState<ImageUpdate[]>(key, kept);
      });
    } catch (error) {
      this.logger.error({ repository: update.repository, err: messageOf(error) }, 'storing the image update failed');
    }
  }

  /** After a restart: the updates stored for the followed images, replayed to every workload. */
  private async restoreLatest(): Promise<void> {
    const repositories = new Set([...this.tracked.values()].flatMap((t) => t.images.map((i) => i.repository)));
    for (const repository of repositories) {
      let stored: ImageUpdate[] | undefined;
      try {
        stored = await this.options.store.getState<ImageUpdate[]>(latestUpdatesKey(repository));
      } catch (error) {
        this.logger.error({ repository, err: messageOf(error) }, 'reading stored image updates failed');
      }
      for (const update of Array.isArray(stored) ? stored : []) {
        if (update?.repository === repository && typeof update.tag === 'string') this.latest.set(`${repository}:${update.tag}`, update);
      }
    }
    if (this.latest.size > 0) for (const key of this.tracked.keys()) this.replay(key);
  }

  private publishTargets(): void {
    const source = this.options.source;
    if (!source || this.stopping || this.targetsTimer) return;
    // Coalesces the burst of the initial list into one call, and a rollout touching many
    // workloads into one call a second: each call builds every target anew, and at ten thousand
    // workloads one every 50 ms held ~70 MiB of garbage at a time.
    const delay = Math.max(TARGETS_COALESCE_MS, this.targetsPublishedAt + TARGETS_MIN_INTERVAL_MS - Date.now());
    this.targetsTimer = setTimeout(() => {
      this.targetsTimer = undefined;
      this.targetsPublishedAt = Date.now();
      Promise.resolve(source.setTargets(this.watchTargets())).catch((error: unknown) => this.logger.error({ err: messageOf(error) }, 'setting registry targets failed'));
    }, delay);
  }

  private scheduleRecheck(key: string, at: Date | undefined): void {
    const existing = this.recheckTimers.get(key);
    if (existing) clearTimeout(existing);
    this.recheckTimers.delete(key);
    if (!at || this.stopping) return;
    // Timers cap at ~24.8 days; a hold that long is rechecked then and again.
    const delay = Math.min(Math.max(at.getTime() - this.now().getTime(), 0) + 50, 2 ** 31 - 1);
    this.recheckTimers.set(key, setTimeout(() => {
      this.recheckTimers.delete(key);
      this.replay(key);
    }, delay));
  }

  private async evaluate(key: string, update: ImageUpdate, queuedAt = performance.now()): Promise<RolloutResult> {
    const tracked = this.tracked.get(key);
    const ref = tracked?.ref ?? { kind: 'Deployment' as const, namespace: '', name: key };
    if (!tracked || this.stopping) return result(ref, RolloutOutcome.Gone, 'workload is no longer followed');
    const log = this.logger.child({ workload: key, repository: update.repository, tag: update.tag });
    const timings = new Timings(queuedAt);
    let outcome: RolloutResult | undefined;
    /** What the patch would have changed, kept for the result when the API server refuses it */
    let planned: readonly ContainerChange[] = [];
    try {
      // The API calls take a place in the pool; the store writes after them do not.
      const done = await this.limiter.run(() => patchFromCache(this.api, ref, (this.tracked.get(key) ?? tracked).workload, async (workload, decidedOn) => {
        timings.mark(decidedOn === 'cache' ? 'wait' : 'reread');
        const now = this.now();
        let settings: WorkloadSettings;
        try {
          settings = readWorkloadSettings(key, workload.metadata?.annotations, workload.metadata?.labels);
        } catch (error) {
          outcome = result(ref, RolloutOutcome.Failed, messageOf(error));
          return undefined;
        }
        const changes = await this.plan(ref, workload, settings, update);
        timings.mark('plan');
        if (!Array.isArray(changes)) {
          outcome = changes;
          return undefined;
        }
        planned = changes;
        const gate = this.checkHold(ref, workload, changes, now);
        if (gate) {
          outcome = gate;
          return undefined;
        }
        let approvalId: string | undefined;
        if (settings.approvals > 0) {
          const { approval, created } = await this.approvals.request(ref, changes, settings.approvals, settings.approvalDeadlineHours, now);
          const status = approvalStatus(approval, now);
          if (status !== 'approved') {
            if (created) {
              log.info({ approval: approval.id, votesRequired: approval.votesRequired, deadline: approval.deadline }, 'update awaits approval');
              this.recordEvent(ref, workload, 'ApprovalRequested', `update needs ${approval.votesRequired} approval(s) by ${approval.deadline}: keelson approve ${approval.id} (${describeChanges(changes)})`);
            }
            const outcomeKind = status === 'pending' ? RolloutOutcome.AwaitingApproval : status === 'rejected' ? RolloutOutcome.Rejected : RolloutOutcome.Expired;
            outcome = result(ref, outcomeKind, `approval ${approval.id} is ${status}`, changes, approval.id);
            return undefined;
          }
          approvalId = approval.id;
        }
        return { patch: buildImagePatch(ref.kind, workload.metadata?.resourceVersion, changes, now), result: { changes, approvalId } };
      }));
      if (!done) return outcome ?? result(ref, RolloutOutcome.Gone, 'workload not found');
      timings.mark('patch');
      return await this.committed(ref, done.workload, done.result.changes, done.result.approvalId, log, update.seenAt, timings);
    } catch (error) {
      // The API server's own words (an admission policy, a quota), not the client's dump of the exchange.
      const message = apiMessage(error);
      log.error({ err: message }, 'rollout failed');
      return result(ref, RolloutOutcome.Failed, message, planned);
    }
  }

  /** The container changes this update asks for, or why there are none. Adopts unknown baselines. */
  private async plan(ref: WorkloadRef, workload: KubeWorkload, settings: WorkloadSettings, update: ImageUpdate): Promise<ContainerChange[] | RolloutResult> {
    const images = watchedImages(ref.kind, workload, settings).filter((i) => i.repository === update.repository);
    if (images.length === 0) return result(ref, RolloutOutcome.NoCandidate, 'no watched container runs this image');
    const record = await this.recordOf(ref);
    const digests = new Map<string, string | undefined>();
    let running: Map<string, Set<string>> | undefined;
    for (const image of images) {
      const chosen = chooseTag({ image, settings, update });
      if (chosen === undefined) continue;
      if (chosen === image.tag && running === undefined) running = runningDigests(await this.api.runningPods(ref, await this.withSelector(ref, workload)));
      const wantsDigest = chosen === image.tag || settings.pinDigest || image.digest !== undefined;
      if (chosen !== update.tag && wantsDigest && this.digests && !digests.has(chosen)) {
        digests.set(chosen, await this.digests.digest(update.repository, chosen));
      }
    }
    const changes: ContainerChange[] = [];
    const adopted: Array<{ image: ContainerImage; digest: string }> = [];
    const reasons = new Set<string>();
    for (const image of images) {
      const decision = decideContainer({
        image, settings, update, running: running?.get(image.container) ?? new Set(), ...(record ? { record } : {}),
        digestOf: (tag) => digests.get(tag),
      });
      if (decision.kind === 'change') changes.push(decision.change);
      else if (decision.kind === 'adopt') adopted.push({ image, digest: decision.digest });
      else reasons.add(decision.reason);
    }
    if (adopted.length > 0) {
      // Nothing tells us what runs: take the registry's digest as the baseline, so a restart rolls nothing.
      const now = this.now().toISOString();
      const containers = { ...(record?.containers ?? {}) };
      for (const { image, digest } of adopted) containers[image.container] = { image: image.image, digest, at: now };
      await this.writeRecord(ref, { containers, lastChanges: record?.lastChanges ?? [], updatedAt: now });
      this.logger.info({ workload: workloadKey(ref), containers: adopted.map((a) => a.image.container) }, 'baseline adopted from registry');
    }
    if (changes.length > 0) return changes;
    const outcome = reasons.has('AlreadyApplied') ? RolloutOutcome.AlreadyApplied
      : reasons.has('UpToDate') || adopted.length > 0 ? RolloutOutcome.UpToDate : RolloutOutcome.NoCandidate;
    return result(ref, outcome, outcome === RolloutOutcome.NoCandidate ? 'the policy accepts no candidate' : 'nothing to roll');
  }

  /** The informer keeps no selector (it is only needed to find running pods, rarely): read it then. */
  private async withSelector(ref: WorkloadRef, workload: KubeWorkload): Promise<KubeWorkload> {
    if (ref.kind === 'CronJob' || workload.spec?.selector) return workload;
    return (await this.api.get(ref)) ?? workload;
  }

  private checkHold(ref: WorkloadRef, fresh: KubeWorkload, changes: readonly ContainerChange[], now: Date): RolloutResult | undefined {
    const hold = readHold(fresh.metadata?.annotations, now);
    if (!hold.held) return undefined;
    this.logger.info({ workload: workloadKey(ref), holders: hold.holders, until: hold.recheckAt?.toISOString() }, 'rollout held by a running build');
    this.scheduleRecheck(workloadKey(ref), hold.recheckAt);
    return result(ref, RolloutOutcome.Held, `held by ${hold.holders.join(', ')}`, changes);
  }

  private async applyApproved(approval: Approval): Promise<RolloutResult> {
    return this.limiter.run(() => this.applyApprovedNow(approval));
  }

  /** An approved update is rare and was voted on: it is decided on a fresh read, never on the informer's copy. */
  private async applyApprovedNow(approval: Approval): Promise<RolloutResult> {
    const ref = approval.workload;
    let outcome: RolloutResult | undefined;
    try {
      const done = await patchOnFreshState(this.api, ref, (fresh) => {
        const now = this.now();
        // The workload moved on since the approval was asked for: the vote is about something else.
        const stale = approval.changes.find((c) => containersOf(ref.kind, fresh, c.init).find((x) => x.name === c.container)?.image !== c.from);
        if (stale) {
          outcome = result(ref, RolloutOutcome.Expired, `container ${stale.container} no longer runs ${stale.from}`, approval.changes, approval.id);
          return undefined;
        }
        const gate = this.checkHold(ref, fresh, approval.changes, now);
        if (gate) {
          outcome = { ...gate, approvalId: approval.id };
          return undefined;
        }
        return { patch: buildImagePatch(ref.kind, fresh.metadata?.resourceVersion, approval.changes, now), result: approval.changes };
      });
      if (!done) {
        if (outcome?.outcome !== RolloutOutcome.Held) await this.approvals.remove(approval.id);
        return outcome ?? result(ref, RolloutOutcome.Gone, 'workload not found', approval.changes, approval.id);
      }
      return await this.committed(ref, done.workload, done.result, approval.id, this.logger.child({ workload: workloadKey(ref) }));
    } catch (error) {
      const message = apiMessage(error);
      this.logger.error({ workload: workloadKey(ref), approval: approval.id, err: message }, 'approved rollout failed');
      return result(ref, RolloutOutcome.Failed, message, approval.changes, approval.id);
    }
  }

  /**
   * After a successful patch: the log line, the store record (so it is never repeated), the
   * trace, and the Event, queued: the next rollout does not wait for it.
   */
  private async committed(ref: WorkloadRef, workload: KubeWorkload, changes: readonly ContainerChange[], approvalId: string | undefined, log: Logger,
    seenAt?: string, timings?: Timings): Promise<RolloutResult> {
    const at = this.now();
    const now = at.toISOString();
    if (seenAt !== undefined && Number.isFinite(Date.parse(seenAt))) pushToRolloutSeconds.observe(Math.max(0, (at.getTime() - Date.parse(seenAt)) / 1000));
    const message = `image updated: ${describeChanges(changes)}`;
    log.info({ changes, approval: approvalId }, 'workload image updated');
    const record = await this.recordOf(ref);
    const containers = { ...(record?.containers ?? {}) };
    for (const c of changes) containers[c.container] = { image: c.to, ...(c.digest ? { digest: c.digest } : {}), at: now };
    await this.writeRecord(ref, { containers, lastChanges: changes, updatedAt: now });
    timings?.mark('record');
    await this.traceRollout(ref, changes, approvalId, now, log);
    timings?.mark('trace');
    if (approvalId) await this.approvals.remove(approvalId);
    this.recordEvent(ref, workload, 'ImageUpdated', message);
    if (timings) log.debug({ ms: timings.spent() }, 'rollout timings');
    return result(ref, RolloutOutcome.Applied, message, changes, approvalId);
  }

  /** Queues a Kubernetes Event on the workload (sent in the background, bounded). */
  private recordEvent(ref: WorkloadRef, workload: KubeWorkload | undefined, reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): void {
    this.events.add({ workload: workloadKey(ref), reason }, () => this.api.recordEvent(ref, workload, reason, message, type));
  }

  /**
   * Adds the applied changes to their digests' traces, so the run that pushed a digest shows
   * where it went. A change made by tag alone gets its digest from the registry (the tag's
   * digest right after the patch). A failure here is logged: the rollout itself is done.
   */
  private async traceRollout(ref: WorkloadRef, changes: readonly ContainerChange[], approvalId: string | undefined, at: string, log: Logger): Promise<void> {
    try {
      const entries: RolloutTrace[] = [];
      for (const c of changes) {
        let digest = c.digest;
        const image = splitImage(c.container, c.init, c.to);
        if (!digest && image && this.digests) digest = await this.digests.digest(image.repository, image.tag);
        if (!digest) continue;
        entries.push({
          workload: workloadKey(ref), container: c.container, from: c.from, image: c.to, digest, at,
          ...(c.fromDigest ? { fromDigest: c.fromDigest } : {}), ...(approvalId ? { approval: approvalId } : {}),
        });
      }
      await this.traces.recordRollouts(entries);
    } catch (error) {
      log.error({ err: messageOf(error) }, 'recording the rollout trace failed');
    }
  }
}

/** Decisions that leave an update to apply later: their changes are the workload's candidate. */
const PENDING_OUTCOMES: ReadonlySet<RolloutOutcome> = new Set([RolloutOutcome.Held, RolloutOutcome.AwaitingApproval, RolloutOutcome.Failed]);

/** Where one rollout's time went (ms per phase), for the debug log and the benchmark's breakdown. */
class Timings {
  private last: number;
  private readonly phases: Record<string, number> = {};

  constructor(private readonly start: number) {
    this.last = start;
  }

  mark(phase: string): void {
    const now = performance.now();
    this.phases[phase] = Math.round((this.phases[phase] ?? 0) + now - this.last);
    this.last = now;
  }

  spent(): Record<string, number> {
    return { ...this.phases, total: Math.round(this.last - this.start) };
  }
}
