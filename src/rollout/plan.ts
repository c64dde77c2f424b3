import type { V1Pod } from '@kubernetes/client-node';
import { parseImageReference } from '../registry/index.js';
import { containersOf, type KubeWorkload } from './patch.js';
import type { WorkloadSettings } from './schema.js';
import type { ContainerChange, ImageUpdate, RolloutRecord, WorkloadKind } from './types.js';

/** A container image split the way we need it, keeping the user's spelling of the name. */
export interface ContainerImage {
  readonly container: string;
  readonly init: boolean;
  /** Exactly as in the spec */
  readonly image: string;
  /** The spec's name without tag or digest (`nginx`, `127.0.0.1:5000/team/app`) */
  readonly name: string;
  /** Normalised `registry/repository`, for matching ImageUpdate.repository */
  readonly repository: string;
  /** `latest` when the spec has none, as docker does */
  readonly tag: string;
  readonly digest?: string;
  /** `imagePullPolicy` as the spec says it (the API server fills in its default on every object it returns) */
  readonly pullPolicy?: string;
}

/** Keel's default tag when an image names none. */
const DEFAULT_TAG = 'latest';

export function splitImage(container: string, init: boolean, image: string, pullPolicy?: string): ContainerImage | undefined {
  let ref;
  try {
    ref = parseImageReference(image);
  } catch {
    return undefined;
  }
  let name = image;
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon);
  return {
    container, init, image, name,
    repository: `${ref.registry}/${ref.repository}`,
    tag: ref.tag ?? DEFAULT_TAG,
    ...(ref.digest ? { digest: ref.digest } : {}),
    ...(pullPolicy ? { pullPolicy } : {}),
  };
}

/**
 * Whether a restarted pod fetches the tag again. Only `Always` does; with `IfNotPresent` (what
 * Kubernetes gives every tag but `latest` when the spec says nothing) the node starts the copy it
 * already has, so a rollout that only restarts pods would keep running the old digest.
 */
export function pullsTagOnRestart(image: ContainerImage): boolean {
  const policy = image.pullPolicy ?? (image.tag === DEFAULT_TAG && image.digest === undefined ? 'Always' : 'IfNotPresent');
  return policy === 'Always';
}

/** The containers the settings say to watch (monitorContainers, initContainers), with their images. */
export function watchedImages(kind: WorkloadKind, workload: KubeWorkload, settings: Pick<WorkloadSettings, 'monitorContainers' | 'initContainers'>): ContainerImage[] {
  const out: ContainerImage[] = [];
  for (const init of settings.initContainers ? [false, true] : [false]) {
    for (const c of containersOf(kind, workload, init)) {
      if (!c.image || (settings.monitorContainers && !settings.monitorContainers.test(c.name))) continue;
      const split = splitImage(c.name, init, c.image, c.imagePullPolicy);
      if (split) out.push(split);
    }
  }
  return out;
}

/** `sha256:...` out of an imageID (`docker-pullable://repo@sha256:...`, `repo@sha256:...`, `sha256:...`). */
export function digestOfImageId(imageId: string | undefined): string | undefined {
  if (!imageId) return undefined;
  const match = /(sha256:[0-9a-f]{64})\s*$/.exec(imageId);
  return match?.[1];
}

/**
 * What the running pods run, per container name: the digests of `status.containerStatuses[].imageID`
 * (or of the status image, when a runtime reports a pinned one). Empty for a container means
 * unknown.
 */
export function runningDigests(pods: readonly V1Pod[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const pod of pods) {
    for (const status of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
      const digest = digestOfImageId(status.imageID) ?? digestOfImageId(status.image);
      if (!digest) continue;
      let set = out.get(status.name);
      if (!set) out.set(status.name, (set = new Set()));
      set.add(digest);
    }
  }
  return out;
}

export type ContainerDecision =
  | { readonly kind: 'change'; readonly change: ContainerChange }
  | { readonly kind: 'skip'; readonly reason: 'OtherImage' | 'NoCandidate' | 'UpToDate' | 'AlreadyApplied' }
  /** The baseline is unknown (no pod reports a digest, nothing recorded): take the registry's digest as it */
  | { readonly kind: 'adopt'; readonly digest: string };

export interface DecideInput {
  readonly image: ContainerImage;
  readonly settings: Pick<WorkloadSettings, 'policy' | 'matchTag' | 'matchPreRelease' | 'pinDigest'>;
  readonly update: ImageUpdate;
  /** Digests the running pods report for this container (empty: unknown) */
  readonly running: ReadonlySet<string>;
  readonly record?: RolloutRecord;
  /** The digest of the chosen tag when it differs from update.tag (resolved by the registry client) */
  readonly digestOf?: (tag: string) => string | undefined;
}

/** The policy's pick for this container, or undefined. Pure, so the controller can call it before resolving digests. */
export function chooseTag(input: Pick<DecideInput, 'image' | 'settings' | 'update'>): string | undefined {
  const { image, settings, update } = input;
  if (image.repository !== update.repository) return undefined;
  const candidates = update.tags && update.tags.length > 0 ? update.tags : [update.tag];
  return settings.policy.choose(image.tag, candidates, { matchTag: settings.matchTag, matchPreRelease: settings.matchPreRelease });
}

/**
 * Decides one container. Two shapes of update, as Keel:
 * - a new tag chosen by the policy: roll to `name:tag` (`name:tag@digest` when pinning);
 * - the same tag (force): follow its digest, compared with what the pods run, so a restart of
 *   keelson rolls nothing and a push made while it was down rolls once. Rolled as `name:tag@digest`
 *   unless the container pulls its tag on every start: otherwise the new pods would start the
 *   old copy the node already has.
 * The store record of what was last applied stops an update from being applied twice.
 */
export function decideContainer(input: DecideInput): ContainerDecision {
  const { image, settings, update, running, record } = input;
  if (image.repository !== update.repository) return { kind: 'skip', reason: 'OtherImage' };
  const chosen = chooseTag(input);
  if (chosen === undefined) return { kind: 'skip', reason: 'NoCandidate' };
  const applied = record?.containers[image.container];
  const pin = settings.pinDigest || image.digest !== undefined;

  if (chosen === image.tag) {
    const digest = update.tag === image.tag ? update.digest : input.digestOf?.(chosen);
    if (!digest) return { kind: 'skip', reason: 'NoCandidate' };
    const baseline = new Set(running);
    // A pinned spec says what runs, even where the runtime reports no digest.
    if (image.digest && baseline.size === 0) baseline.add(image.digest);
    // Else what the record says keelson rolled to, else the digest the watcher saw before this one.
    if (baseline.size === 0 && !applied && update.tag === image.tag && update.previousDigest) baseline.add(update.previousDigest);
    if (baseline.size > 0 && [...baseline].every((d) => d === digest)) return { kind: 'skip', reason: 'UpToDate' };
    if (applied?.digest === digest) return { kind: 'skip', reason: 'AlreadyApplied' };
    if (baseline.size === 0 && !applied) return { kind: 'adopt', digest };
    const to = pin || !pullsTagOnRestart(image) ? `${image.name}:${chosen}@${digest}` : `${image.name}:${chosen}`;
    const fromDigest = baseline.size === 1 ? [...baseline][0] : applied?.digest;
    return { kind: 'change', change: { container: image.container, init: image.init, from: image.image, to, digest, ...(fromDigest ? { fromDigest } : {}) } };
  }

  const digest = update.tag === chosen ? update.digest : input.digestOf?.(chosen);
  const to = pin && digest ? `${image.name}:${chosen}@${digest}` : `${image.name}:${chosen}`;
  if (to === image.image) return { kind: 'skip', reason: 'UpToDate' };
  if (applied?.image === to) return { kind: 'skip', reason: 'AlreadyApplied' };
  return { kind: 'change', change: { container: image.container, init: image.init, from: image.image, to, ...(digest ? { digest } : {}) } };
}
