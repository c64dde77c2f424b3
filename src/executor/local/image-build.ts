import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BuildSpec } from '../../config/index.js';
import { resolveInTree } from '../../git/index.js';
import type { RunImage } from '../../store/index.js';
import type { RunLogSink, SourceTree } from '../types.js';
import { runCommand, type CommandOptions, type CommandResult } from './process.js';

export interface ImageBuildOptions {
  readonly source: SourceTree;
  readonly build: BuildSpec;
  /** host[:port]; without it the image stays in local storage */
  readonly registry?: string;
  /** A docker config.json with credentials for the registry (never passed on a command line). */
  readonly authFile?: string;
  /** Plain HTTP / unverified TLS for this registry. */
  readonly insecure: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly log: RunLogSink;
  readonly stage?: (text: string) => void;
  readonly signal: AbortSignal;
  /** Names the push scratch dir in the temp dir, so recovery after a crash finds the run's.
   * @default 'keelson-push-' */
  readonly scratchPrefix?: string;
  /** See CommandOptions.recordProcess. */
  readonly recordProcess?: CommandOptions['recordProcess'];
}

export type ImageBuildResult =
  | { readonly ok: true; readonly image: RunImage; readonly refs: readonly string[] }
  | {
    readonly ok: false; readonly stage: 'build' | 'push'; readonly exitCode: number | null; readonly aborted: boolean;
    /** What to do about a failure keelson recognises, in a few words. */
    readonly hint?: string;
  };

/**
 * buildah (and podman) run a Dockerfile RUN with an OCI runtime by default; when none is installed
 * (Debian installs buildah without its recommended runc) every RUN fails with this.
 */
export function buildFailureHint(tool: string, output: string): string | undefined {
  if (tool !== 'docker' && output.includes('exec: no command')) {
    return `${tool} found no OCI runtime for a RUN step ("exec: no command"): install runc (apt-get install runc), or set BUILDAH_ISOLATION=chroot in keelson's environment`;
  }
  return undefined;
}

/** A Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. Branch names like `feature/x` become `feature-x`. */
export function toImageTag(text: string): string {
  const tag = text.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
  return tag.length > 0 ? tag : 'latest';
}

/** Expands `{{branch}}`, `{{commit}}` and `{{shortCommit}}` in the declared tags. */
export function expandTags(tags: readonly string[], source: SourceTree): string[] {
  const values: Record<string, string> = {
    branch: source.branch,
    commit: source.commit,
    shortCommit: source.commit.slice(0, 12),
  };
  const expanded = tags.map((tag) =>
    toImageTag(tag.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => values[key] ?? whole)));
  return [...new Set(expanded)];
}

/** The build's context directory and Dockerfile, resolved inside the committed tree (TreePathError otherwise). */
export async function buildPaths(root: string, build: Pick<BuildSpec, 'context' | 'dockerfile'>): Promise<{ context: string; dockerfile: string }> {
  const context = await resolveInTree(root, build.context, 'build.context');
  const given = path.isAbsolute(build.dockerfile) ? build.dockerfile : path.join(build.context, build.dockerfile);
  const dockerfile = await resolveInTree(root, given, 'build.dockerfile');
  return { context, dockerfile };
}

/**
 * Builds the declared image with buildah or podman (same CLI) or docker, with layer caching,
 * and pushes every tag. The digest comes from `--digestfile` (buildah/podman) or from docker's
 * push output.
 */
export async function buildAndPushImage(options: ImageBuildOptions): Promise<ImageBuildResult> {
  const { build, source } = options;
  const tool = build.tool;
  const repository = options.registry ? `${options.registry}/${build.image}` : `localhost/${build.image}`;
  const refs = expandTags(build.tags, source).map((tag) => `${repository}:${tag}`);
  // Both inside the committed tree: a build must not carry a file of this machine into an image.
  // (The builders themselves resolve the context's own symlinks inside the context.)
  const { context, dockerfile } = await buildPaths(source.dir, build);
  const run = (args: string[]): Promise<CommandResult> =>
    runCommand(tool, args, {
      cwd: source.dir, env: options.env, log: options.log, signal: options.signal,
      ...(options.recordProcess ? { recordProcess: options.recordProcess } : {}),
    });

  const buildArgs = tool === 'docker' ? ['build'] : ['build', '--layers'];
  buildArgs.push('-f', dockerfile);
  for (const ref of refs) buildArgs.push('-t', ref);
  for (const [key, value] of Object.entries(build.args)) buildArgs.push('--build-arg', `${key}=${value}`);
  if (build.cacheRepo && options.registry && tool !== 'docker') {
    const cache = `${options.registry}/${build.cacheRepo}`;
    buildArgs.push('--cache-from', cache, '--cache-to', cache);
    if (options.insecure) buildArgs.push('--tls-verify=false');
    if (options.authFile) buildArgs.push('--authfile', options.authFile);
  }
  buildArgs.push(context);
  options.log(`keelson: building ${refs.join(', ')} with ${tool}\n`);
  options.stage?.(`building ${refs[0]}`);
  const built = await run(buildArgs);
  if (built.exitCode !== 0) {
    const hint = buildFailureHint(tool, built.tail);
    return { ok: false, stage: 'build', exitCode: built.exitCode, aborted: built.aborted, ...(hint ? { hint } : {}) };
  }

  if (!options.registry) {
    options.log(`keelson: no registry configured; ${refs[0]} stays in local ${tool} storage\n`);
    return { ok: true, image: { ref: refs[0]!, pushed: false }, refs };
  }

  const scratch = await mkdtemp(path.join(tmpdir(), options.scratchPrefix ?? 'keelson-push-'));
  try {
    let digest: string | undefined;
    for (const ref of refs) {
      const digestFile = path.join(scratch, 'digest');
      const pushArgs = tool === 'docker' ? ['push', ref] : ['push', '--digestfile', digestFile];
      if (tool !== 'docker') {
        if (options.insecure) pushArgs.push('--tls-verify=false');
        if (options.authFile) pushArgs.push('--authfile', options.authFile);
        pushArgs.push(ref, `docker://${ref}`);
      }
      options.log(`keelson: pushing ${ref}\n`);
      options.stage?.(`pushing ${ref}`);
      const pushed = await run(pushArgs);
      if (pushed.exitCode !== 0) return { ok: false, stage: 'push', exitCode: pushed.exitCode, aborted: pushed.aborted };
      digest = tool === 'docker'
        ? /digest: (sha256:[a-f0-9]{64})/.exec(pushed.tail)?.[1]
        : (await readFile(digestFile, 'utf8')).trim();
    }
    return { ok: true, image: { ref: refs[0]!, digest, pushed: true }, refs };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
