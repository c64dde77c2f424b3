import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand, toolEnvironment } from '../executor/index.js';
import type { DeployTool, PlannedCommand, RunImageOptions, RunImageResult } from './types.js';

/** A digest reference is content-addressed: pulling it once is enough, and it is exactly what was pushed. */
export function isDigestReference(image: string): boolean {
  return /@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,}$/.test(image);
}

/**
 * The commands that run `image` with `tool`, in order. buildah has no `run IMAGE`: it creates a
 * working container (`from`), runs the command in it and removes it. podman and docker do all
 * three in `run --rm`. Credentials only ever travel as a file path.
 *
 * `dockerConfigDir` is a directory holding the auth file as `config.json` (docker reads
 * credentials only from there).
 */
export function planImageRun(options: RunImageOptions, dockerConfigDir?: string): PlannedCommand[] {
  const tool: DeployTool = options.tool ?? 'buildah';
  const env = Object.entries(options.containerEnv ?? {}).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
  const pinned = isDigestReference(options.image);
  const registryFlags = [
    ...(options.insecure ? ['--tls-verify=false'] : []),
    ...(options.authFile ? ['--authfile', options.authFile] : []),
  ];
  switch (tool) {
    case 'buildah':
      return [
        { stage: 'pull', args: ['from', '--name', options.name, ...(pinned ? [] : ['--pull=always']), ...registryFlags, options.image] },
        // `--` so that the command's own flags are not read as buildah's
        { stage: 'run', args: ['run', ...env, options.name, '--', ...options.command] },
        { stage: 'cleanup', args: planContainerRemoval('buildah', options.name) },
      ];
    case 'podman':
      return [{
        stage: 'run',
        args: ['run', '--rm', '--name', options.name, ...(pinned ? [] : ['--pull=always']), ...registryFlags, ...env, options.image, ...options.command],
      }];
    case 'docker':
      // docker has no --tls-verify: insecure registries are the daemon's setting.
      return [{
        stage: 'run',
        args: [...(dockerConfigDir ? ['--config', dockerConfigDir] : []), 'run', '--rm', '--name', options.name,
          ...(pinned ? [] : ['--pull=always']), ...env, options.image, ...options.command],
      }];
  }
}

/**
 * The command that removes a working container left by a keelson that died mid-deploy: buildah's
 * `from` container, or a podman/docker container whose `run --rm` client was killed (the
 * container itself belongs to the tool's own daemon or monitor and outlives the client).
 */
export function planContainerRemoval(tool: DeployTool, name: string): string[] {
  return tool === 'buildah' ? ['rm', name] : ['rm', '--force', name];
}

/** Whether a removal's failure only says there was nothing to remove. */
function nothingToRemove(output: string): boolean {
  return /no such container|container not known|not found|does not exist/i.test(output);
}

/**
 * Removes the working container `name` if it exists. Resolves to whether one was removed; a
 * failure other than "no such container" is thrown, so it is logged rather than hidden.
 */
export async function removeWorkingContainer(tool: DeployTool, name: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const removed = await runCommand(tool, planContainerRemoval(tool, name), { cwd: tmpdir(), env, log: () => {}, signal: AbortSignal.timeout(60_000) });
  if (removed.exitCode === 0) return true;
  if (nothingToRemove(removed.tail)) return false;
  throw new Error(`${tool} ${planContainerRemoval(tool, name).join(' ')}: exit ${removed.exitCode}: ${removed.tail.trim()}`);
}

/**
 * Runs a command in an image with buildah (`from` + `run` + `rm`), podman or docker, its output
 * going to `log`. The working container is removed also after a failure or an abort. Never
 * throws for a failing command: the result says which stage failed and how.
 */
export async function runImage(options: RunImageOptions): Promise<RunImageResult> {
  const tool: DeployTool = options.tool ?? 'buildah';
  const env = options.env ?? toolEnvironment({});
  const scratch = tool === 'docker' && options.authFile ? await mkdtemp(path.join(tmpdir(), `${options.name}-docker-`)) : undefined;
  try {
    if (scratch) await copyFile(options.authFile!, path.join(scratch, 'config.json'));
    const plan = planImageRun(options, scratch);
    let result: RunImageResult = { ok: true };
    // An aborted `from` may or may not have created the container: remove it either way.
    let created: 'yes' | 'maybe' | 'no' = 'no';
    for (const step of plan.filter((s) => s.stage !== 'cleanup')) {
      const ran = await runCommand(tool, step.args, {
        cwd: tmpdir(), env, log: options.log, signal: options.signal,
        ...(options.recordProcess ? { recordProcess: options.recordProcess } : {}),
      });
      if (step.stage === 'pull') created = ran.exitCode === 0 ? 'yes' : ran.aborted ? 'maybe' : 'no';
      if (ran.exitCode !== 0 || ran.aborted) {
        result = { ok: false, stage: step.stage === 'pull' ? 'pull' : 'run', exitCode: ran.exitCode, aborted: ran.aborted };
        break;
      }
    }
    for (const step of plan.filter((s) => s.stage === 'cleanup')) {
      if (created === 'no') break;
      // Not the run's signal: an aborted run still removes its container.
      const removed = await runCommand(tool, step.args, { cwd: tmpdir(), env, log: () => {}, signal: AbortSignal.timeout(60_000) });
      if (removed.exitCode !== 0 && created === 'yes') options.log(`keelson: could not remove working container ${options.name}: ${removed.tail.trim()}\n`);
    }
    return result;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
