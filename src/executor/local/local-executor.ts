import type { RunId } from '../../domain/index.js';
import { isLoopbackHost } from '../../registry/index.js';
import { RunReason } from '../../store/index.js';
import type { ExecutionRequest, ExecutionResult, Executor } from '../types.js';
import { TreePathError } from '../../git/index.js';
import { stepEnvironment, toolEnvironment } from './environment.js';
import { buildAndPushImage } from './image-build.js';
import { runCommand, type CommandOptions } from './process.js';

function recording(request: ExecutionRequest): Pick<CommandOptions, 'recordProcess'> {
  return request.recordProcess ? { recordProcess: request.recordProcess } : {};
}

export interface LocalExecutorOptions {
  /** A docker config.json with registry credentials, for pushes. */
  readonly authFile?: string;
  /** Whether a registry host is reached over plain HTTP / without TLS verification.
   * @default loopback hosts only, as docker does */
  readonly isInsecureRegistry?: (host: string) => boolean;
  /**
   * keelson's own environment, which steps and builders pick from: steps get PATH, HOME, LANG,
   * LC_ALL, TZ, TMPDIR and the `passEnv` names; builders also their tool's configuration
   * (BUILDAH_*, CONTAINERS_*, STORAGE_*, DOCKER_HOST...). @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Names of variables of `env` that steps and builders see too (the operator's `passEnv:`). @default [] */
  readonly passEnv?: readonly string[];
}

/**
 * Runs a pipeline on this machine: each step with `sh -c` in the run's workspace (the committed
 * tree), then the declared image build and push. Every step gets the run's identity in
 * KEELSON_* variables and an explicit environment (see stepEnvironment), never keelson's own.
 */
export class LocalExecutor implements Executor {
  readonly kind = 'local' as const;
  private readonly options: Required<Omit<LocalExecutorOptions, 'authFile'>> & Pick<LocalExecutorOptions, 'authFile'>;

  constructor(options: LocalExecutorOptions = {}) {
    this.options = {
      authFile: options.authFile,
      isInsecureRegistry: options.isInsecureRegistry ?? isLoopbackHost,
      env: options.env ?? process.env,
      passEnv: options.passEnv ?? [],
    };
  }

  async execute(request: ExecutionRequest): Promise<ExecutionResult> {
    const { pipeline, source, log } = request;
    const timeout = AbortSignal.timeout(pipeline.timeout.milliseconds);
    const signal = AbortSignal.any([request.signal, timeout]);
    const env = stepEnvironment(this.options, pipeline.env, runValues(request));
    const stopped = (): ExecutionResult => timeout.aborted
      ? { ok: false, reason: RunReason.TimedOut, message: `run exceeded its timeout of ${pipeline.timeout}` }
      : { ok: false, reason: RunReason.Superseded, message: 'run was cancelled' };

    for (const [index, step] of pipeline.steps.entries()) {
      log(`keelson: step ${index + 1}/${pipeline.steps.length}: ${step}\n`);
      request.stage?.(`step ${index + 1}/${pipeline.steps.length}: ${step}`);
      const result = await runCommand('sh', ['-c', step], { cwd: source.dir, env, log, signal, ...recording(request) });
      if (result.aborted) return stopped();
      if (result.exitCode !== 0) {
        return {
          ok: false,
          reason: RunReason.StepFailed,
          message: `step ${index + 1} "${step}" exited with ${result.exitCode ?? 'a signal'}`,
          exitCode: result.exitCode ?? undefined,
        };
      }
    }

    if (!pipeline.build) {
      return { ok: true, reason: RunReason.StepsSucceeded, message: `${pipeline.steps.length} step(s) succeeded` };
    }
    let built;
    try {
      built = await buildAndPushImage({
        source,
        build: pipeline.build,
        registry: request.registry,
        authFile: this.options.authFile,
        insecure: request.registry ? this.options.isInsecureRegistry(request.registry) : false,
        env: toolEnvironment(this.options),
        log,
        ...(request.stage ? { stage: request.stage } : {}),
        signal,
        scratchPrefix: `keelson-push-${request.runId}-`,
        ...recording(request),
      });
    } catch (error) {
      if (error instanceof TreePathError) return { ok: false, reason: RunReason.InvalidPipeline, message: error.message };
      throw error;
    }
    if (!built.ok) {
      if (built.aborted) return stopped();
      return {
        ok: false,
        reason: built.stage === 'build' ? RunReason.BuildFailed : RunReason.PushFailed,
        message: `${pipeline.build.tool} ${built.stage} exited with ${built.exitCode ?? 'a signal'}${built.hint ? `: ${built.hint}` : ''}`,
        exitCode: built.exitCode ?? undefined,
      };
    }
    const where = built.image.pushed ? `pushed ${built.image.ref}@${built.image.digest ?? 'unknown digest'}` : `built ${built.image.ref} (not pushed: no registry configured)`;
    return { ok: true, reason: RunReason.StepsSucceeded, message: where, image: built.image };
  }

}

/** The run's identity, as every step sees it. */
function runValues(request: ExecutionRequest): Record<string, string> {
  const runId: RunId = request.runId;
  return {
    KEELSON_RUN_ID: runId,
    KEELSON_REPO: request.source.repo,
    KEELSON_BRANCH: request.source.branch,
    KEELSON_COMMIT: request.source.commit,
    ...(request.registry ? { KEELSON_REGISTRY: request.registry } : {}),
  };
}
