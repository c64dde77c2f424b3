import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { StateStore } from '../store/index.js';
import { WatchState } from './schema.js';
import type { HeadReader, WatchSpec } from './types.js';
import { createHeadReader } from './watcher.js';
import { DEFAULT_BRANCH_KEY, parseWatchSpec, repoDisplay } from './watch-spec.js';

/** A watch with its branch resolved, and the keys other spellings of it were recorded under. */
export interface ResolvedWatch {
  /** `branch` is set, so `key` is `<repository>^<branch>` whatever the user typed */
  readonly spec: WatchSpec;
  /** Keys that name the same watch: `<repository>^HEAD` when the branch is the default one */
  readonly aliases: readonly string[];
}

/** The repository part of a key: everything before the last `^`. */
export function repositoryKey(spec: WatchSpec): string {
  return spec.key.slice(0, spec.key.lastIndexOf('^'));
}

/**
 * One identity per (repository, branch): `.`, `./`, `$PWD`, `file://$PWD`, `.^HEAD` and `.^main`
 * (when main is checked out) all resolve to `<real path>^main`, so a commit built by `run` is not
 * built again by `watch`, and `runs --watch` finds it under any spelling. Without a branch the
 * repository's default branch is read now (HEAD of a checkout, the remote's HEAD symref); when
 * that read fails the spec stays as it was and is resolved by the next caller.
 */
export async function resolveWatch(spec: WatchSpec, readerFor: (spec: WatchSpec) => HeadReader = createHeadReader,
  logger?: Logger): Promise<ResolvedWatch> {
  const defaultKey = `${repositoryKey(spec)}^${DEFAULT_BRANCH_KEY}`;
  let defaultBranch: string;
  try {
    defaultBranch = (await readerFor({ ...spec, branch: undefined, key: defaultKey }).readHead()).branch;
  } catch (error) {
    logger?.debug({ watch: spec.display, reason: messageOf(error) }, 'cannot resolve the default branch yet');
    return { spec, aliases: [] };
  }
  const branch = spec.branch ?? defaultBranch;
  const resolved: WatchSpec = spec.branch !== undefined ? spec : {
    ...spec,
    branch,
    key: `${repositoryKey(spec)}^${branch}`,
    display: `${spec.display}^${branch}`,
  };
  // A `file://` watch was once keyed by its URL rather than by the directory's path.
  const url = spec.kind === 'remote' && repositoryKey(spec) !== repoDisplay(spec) ? repoDisplay(spec) : undefined;
  const aliases = [
    ...(branch === defaultBranch ? [defaultKey] : []),
    ...(url ? [`${url}^${branch}`, ...(branch === defaultBranch ? [`${url}^${DEFAULT_BRANCH_KEY}`] : [])] : []),
  ];
  return { spec: resolved, aliases };
}

/**
 * State recorded under an alias (by a version that keyed `watch .` as `^HEAD`) becomes the
 * watch's own, once, so a restart does not build the last commit again.
 */
export async function adoptAliasState(state: StateStore, resolved: ResolvedWatch): Promise<void> {
  const own = `watch:${resolved.spec.key}`;
  if ((await state.getState<unknown>(own)) !== undefined) return;
  for (const alias of resolved.aliases) {
    const value = await state.getState<unknown>(`watch:${alias}`);
    // `^HEAD` followed whatever was checked out: only a commit of this branch is this watch's.
    const parsed = WatchState.safeParse(value);
    if (parsed.success && parsed.data.branch === resolved.spec.branch) {
      await state.setState(own, value);
      return;
    }
  }
}

/** Parses and resolves a watch as the user typed it (any spelling), for filters such as `runs --watch`. */
export async function watchKeysFor(text: string): Promise<string[]> {
  let spec: WatchSpec;
  try {
    spec = parseWatchSpec(text);
  } catch {
    return [text]; // a repository that is gone: match the key as written
  }
  const resolved = await resolveWatch(spec);
  return [...new Set([resolved.spec.key, ...resolved.aliases, spec.key])];
}
