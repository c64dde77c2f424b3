import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { BatchV1Api, CoreV1Api, Exec, KubeConfig, type V1Job, type V1Pod, type V1Status } from '@kubernetes/client-node';
import { isSuperseded } from '../../domain/index.js';
import { isKeelsonError, messageOf } from '../../errors.js';
import { resolveInTree, TreePathError } from '../../git/index.js';
import { anonymousCredentials, type CredentialLookup } from '../../registry/index.js';
import { RunReason } from '../../store/index.js';
import { buildPaths, expandTags } from '../local/image-build.js';
import type { ExecutionRequest, ExecutionResult, Executor } from '../types.js';
import { BuilderTemplateError, builderValues, registrySecret, renderBuilderJob, type TemplateOrigin } from './builder-job.js';
import { builderJobProblems } from './job-policy.js';
import { followJob } from './follow.js';
import { BRANCH_LABEL, MANAGED_BY, REPOSITORY_LABEL, runLabels, runNamespace } from './naming.js';
import { claimProblem, describePod, podProblem, reportedDigest } from './pod-status.js';
import { packSource, SourceTooLargeError, unpackCommand } from './source-archive.js';

const EXPIRES = 'keelson.dev/expires-at';
const DEFAULT_TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));
const SOURCE_CLAIM = 'source';
const COPY_POD = 'copy-source';

export interface KubernetesExecutorOptions {
  /** Cluster access: in-cluster service account or the user's kubeconfig. */
  readonly kubeConfig: KubeConfig;
  /**
   * Registry credentials (the registry config); written into the run namespace's `registry-auth`
   * Secret that the builder mounts. @default anonymous (an empty docker config)
   */
  readonly credentials?: CredentialLookup;
  /** Image of the copy pod; needs sh, head, sha256sum and tar. @default 'busybox:1.36' */
  readonly copyImage?: string;
  /** Image of the builder Job (`{{BuilderImage}}`). @default the builder's, DEFAULT_BUILDER_IMAGES */
  readonly builderImage?: string;
  /**
   * The operator's builder Job template (`--template`); wins over the pipeline's
   * `kubernetes.template`, which is read from inside the committed tree. @default none
   */
  readonly template?: string;
  /** Where `builder-<builder>.yaml` templates live. @default the package's templates/ */
  readonly templatesDir?: string;
  /**
   * How long the copy pod may take to run, including the source volume being bound; past it the
   * run fails saying what the pod or the claim waits for. @default 120000 ms
   */
  readonly podStartTimeoutMs?: number;
}

/** A step of the run that failed, with the run reason it maps to. */
class RunStepError extends Error {
  constructor(readonly reason: RunReason, message: string, readonly exitCode?: number) {
    super(message);
  }
}

/**
 * Runs a pipeline's image build in a cluster: a namespace per run, a PVC holding the committed
 * tree (copied in through a short-lived pod as a checksummed tar over exec), a Secret with the
 * registry credentials, then a builder Job rendered from a template, followed to its end; its
 * logs go to the run log and the digest it reports is recorded. Successful and cancelled runs'
 * namespaces are deleted; failed ones are kept for `keepFailed` (all of them with `debug`).
 */
export class KubernetesExecutor implements Executor {
  readonly kind = 'kubernetes' as const;
  private readonly options: Required<Omit<KubernetesExecutorOptions, 'template' | 'builderImage'>> & Pick<KubernetesExecutorOptions, 'template' | 'builderImage'>;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;

  constructor(options: KubernetesExecutorOptions) {
    this.options = {
      kubeConfig: options.kubeConfig,
      credentials: options.credentials ?? anonymousCredentials,
      copyImage: options.copyImage ?? 'busybox:1.36',
      templatesDir: options.templatesDir ?? DEFAULT_TEMPLATES,
      podStartTimeoutMs: options.podStartTimeoutMs ?? 120_000,
      ...(options.template ? { template: options.template } : {}),
      ...(options.builderImage ? { builderImage: options.builderImage } : {}),
    };
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.batch = options.kubeConfig.makeApiClient(BatchV1Api);
  }

  async execute(request: ExecutionRequest): Promise<ExecutionResult> {
    const { pipeline, log, source } = request;
    const spec = pipeline.kubernetes;
    const build = pipeline.build;
    if (!build) {
      return { ok: false, reason: RunReason.InvalidPipeline, message: 'the kubernetes executor builds images: add a build: section to the pipeline' };
    }
    const timeout = AbortSignal.timeout(pipeline.timeout.milliseconds);
    const signal = AbortSignal.any([request.signal, timeout]);
    const namespace = runNamespace(source.repo, source.branch, request.runId);
    const labels = runLabels(source.repo, source.branch, request.runId);
    const repository = `${request.registry ? `${request.registry}/` : ''}${build.image}`;
    const images = expandTags(build.tags, source).map((tag) => `${repository}:${tag}`);
    const pods = new Map<string, V1Pod>();
    let result: ExecutionResult;
    let job: V1Job;
    try {
      // Rendered and checked before anything is created: a refused template changes nothing in the cluster.
      job = await this.builderJob(request, namespace, images);
    } catch (error) {
      return this.failure(error, request.signal, timeout, pipeline.timeout.toString(), []);
    }
    try {
      await this.removeExpiredNamespaces().catch(() => undefined);
      log(`keelson: namespace ${namespace}\n`);
      await this.core.createNamespace({
        body: {
          metadata: {
            name: namespace,
            labels,
            annotations: { [REPOSITORY_LABEL]: source.repo, [BRANCH_LABEL]: source.branch, 'keelson.dev/commit': source.commit },
          },
        },
      });
      await this.copySource(request, namespace, labels, signal);
      await this.core.createNamespacedSecret({ namespace, body: registrySecret(this.options.credentials, labels, request.registry) });
      const created = await this.batch.createNamespacedJob({ namespace, body: { ...job, metadata: { ...job.metadata, namespace } } });
      const jobName = created.metadata!.name!;
      log(`keelson: builder Job ${jobName} (${spec.template ? spec.template : spec.builder}) for ${images.join(', ')}\n`);
      const end = await followJob(this.options.kubeConfig, namespace, jobName, signal, pods);
      const logText = await this.copyLogs(namespace, jobName, log);
      const current = await this.jobPods(namespace, jobName);
      for (const pod of current) pods.set(pod.metadata!.name!, pod);
      if (end.kind === 'pod') {
        result = { ok: false, reason: RunReason.BuildFailed, message: `builder Job ${jobName}: ${end.problem}` };
      } else if (end.outcome === 'Complete') {
        const digest = reportedDigest(current, logText, repository);
        result = {
          ok: true, reason: RunReason.StepsSucceeded,
          message: `built ${images[0]}${digest ? `@${digest}` : ''}`,
          image: { ref: images[0]!, pushed: true, ...(digest ? { digest } : {}) },
        };
      } else {
        result = jobFailure(jobName, [...pods.values()]);
      }
    } catch (error) {
      result = this.failure(error, request.signal, timeout, pipeline.timeout.toString(), [...pods.values()]);
    }
    // A run stopped on purpose (or timed out) says so, even when the Job or a pod happened to
    // fail while it was being stopped.
    if (!result.ok && signal.aborted) {
      result = this.failure(undefined, request.signal, timeout, pipeline.timeout.toString(), [...pods.values()]);
    }
    await this.cleanUp(namespace, result, spec.debug, spec.keepFailed.milliseconds, signal.aborted).catch((error: unknown) => {
      log(`keelson: cleaning up namespace ${namespace} failed: ${apiMessage(error)}\n`);
    });
    return result;
  }

  private failure(error: unknown, cancel: AbortSignal, timeout: AbortSignal, limit: string, pods: readonly V1Pod[]): ExecutionResult {
    if (timeout.aborted) {
      const waiting = pods.filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase ?? '')).map(describePod);
      return { ok: false, reason: RunReason.TimedOut, message: `run exceeded its timeout of ${limit}${waiting.length ? `; ${waiting.join('; ')}` : ''}` };
    }
    if (cancel.aborted) {
      return isSuperseded(cancel.reason)
        ? { ok: false, reason: RunReason.Superseded, message: cancel.reason.message }
        : { ok: false, reason: RunReason.Shutdown, message: 'the run was stopped; its namespace was deleted' };
    }
    if (error instanceof RunStepError) return { ok: false, reason: error.reason, message: error.message, exitCode: error.exitCode };
    if (error instanceof BuilderTemplateError || isKeelsonError(error)) {
      return { ok: false, reason: RunReason.InvalidPipeline, message: messageOf(error) };
    }
    return { ok: false, reason: RunReason.ExecutorError, message: `kubernetes: ${apiMessage(error)}` };
  }

  private async copySource(request: ExecutionRequest, namespace: string, labels: Record<string, string>, signal: AbortSignal): Promise<void> {
    const spec = request.pipeline.kubernetes;
    await this.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: SOURCE_CLAIM, labels },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: spec.sourceSize } },
          ...(spec.storageClass ? { storageClassName: spec.storageClass } : {}),
        },
      },
    });
    let archive;
    try {
      archive = await packSource(request.source.dir, spec.maxSourceBytes);
    } catch (error) {
      if (error instanceof SourceTooLargeError) throw new RunStepError(RunReason.SourceFailed, error.message);
      throw error;
    }
    try {
      // A new namespace gets its default ServiceAccount a moment later; admission refuses pods until then.
      await retryUntil(signal, 30_000, () => this.core.readNamespacedServiceAccount({ name: 'default', namespace }));
      await this.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: COPY_POD, labels },
          spec: {
            restartPolicy: 'Never',
            terminationGracePeriodSeconds: 0,
            containers: [{
              name: 'copy',
              image: this.options.copyImage,
              command: ['sleep', '3600'],
              // the unpack command works relative to this directory, the mounted volume
              workingDir: '/workspace',
              volumeMounts: [{ name: 'source', mountPath: '/workspace' }],
            }],
            volumes: [{ name: 'source', persistentVolumeClaim: { claimName: SOURCE_CLAIM } }],
          },
        },
      });
      await this.waitForCopyPod(namespace, signal);
      request.log(`keelson: copying ${archive.bytes} bytes of source (sha256 ${archive.sha256})\n`);
      // The unpack is idempotent, so a failed attempt (an exec endpoint that is not ready yet, a
      // dropped stream) is simply repeated; a checksum mismatch fails every attempt.
      let status: V1Status = { status: 'Failure' };
      for (let attempt = 1; attempt <= 3 && status.status !== 'Success'; attempt++) {
        if (attempt > 1) {
          request.log(`keelson: copy attempt ${attempt - 1} failed (${status.message ?? 'no message'}); retrying\n`);
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
        signal.throwIfAborted();
        status = await execWithStdin(this.options.kubeConfig, namespace, COPY_POD, 'copy', unpackCommand(archive.bytes, archive.sha256), archive.file, signal);
      }
      signal.throwIfAborted();
      if (status.status !== 'Success') {
        throw new RunStepError(RunReason.SourceFailed, `copying the source into the volume failed after 3 attempts: ${status.message ?? status.reason ?? 'unknown error'}`);
      }
      await this.core.deleteNamespacedPod({ name: COPY_POD, namespace, gracePeriodSeconds: 0 });
    } finally {
      await archive.dispose();
    }
  }

  /** Until the copy pod runs; fails early when it cannot start, and says why when it took too long. */
  private async waitForCopyPod(namespace: string, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    for (;;) {
      signal.throwIfAborted();
      const pod = await this.core.readNamespacedPod({ name: COPY_POD, namespace });
      if (pod.status?.phase === 'Running') return;
      const problem = podProblem(pod) ?? (pod.status?.phase === 'Failed' ? `copy pod failed: ${pod.status.message ?? describePod(pod)}` : undefined);
      if (problem) throw new RunStepError(RunReason.SourceFailed, problem);
      const waited = Date.now() - started;
      if (waited > this.options.podStartTimeoutMs) {
        const claim = await this.core.readNamespacedPersistentVolumeClaim({ name: SOURCE_CLAIM, namespace });
        throw new RunStepError(RunReason.SourceFailed, claimProblem(claim, waited) ??
          `the copy pod did not start within ${Math.round(waited / 1000)}s: ${describePod(pod)}`);
      }
      await sleep(200, signal);
    }
  }

  /** The builder Job for the run, rendered from its template; a repository pipeline's Job is checked against what the operator allowed. */
  private async builderJob(request: ExecutionRequest, namespace: string, images: readonly string[]): Promise<V1Job> {
    const spec = request.pipeline.kubernetes;
    // Checked here too, though the builder only sees the volume: a pipeline means the same on every executor.
    await buildPaths(request.source.dir, request.pipeline.build!);
    // The operator's template wins; a pipeline's own `kubernetes.template` is read from the committed tree.
    const origin: TemplateOrigin = this.options.template !== undefined ? 'operator' : spec.template !== undefined ? 'repository' : 'builtIn';
    const templateFile = this.options.template ??
      (spec.template ? await templateInTree(request.source.dir, spec.template) : join(this.options.templatesDir, `builder-${spec.builder}.yaml`));
    const values = builderValues({ request, namespace, images, credentials: this.options.credentials, ...(this.options.builderImage ? { builderImage: this.options.builderImage } : {}) });
    const job = await renderBuilderJob(templateFile, values, origin);
    // Whatever a commit chose (its template, or values rendered into ours) gets no more than the
    // operator allowed for this watch.
    if (request.repositoryPipeline) {
      const problems = builderJobProblems(job, new Set(request.repositoryPipeline.allowBuilder));
      if (problems.length > 0) {
        const privileges = [...new Set(problems.map((p) => p.privilege))];
        throw new RunStepError(RunReason.InvalidPipeline,
          `the builder Job of this repository's pipeline asks for ${problems.map((p) => `${p.privilege} (${p.where})`).join(', ')}; ` +
          `refused: the operator's config does not allow it for this watch (allowBuilder: [${privileges.join(', ')}] on the watch would)`);
      }
    }
    return job;
  }

  private async jobPods(namespace: string, job: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items;
  }

  /** Copies every container's log of the Job's pods into the run log; returns the text. */
  private async copyLogs(namespace: string, job: string, log: (text: string) => void): Promise<string> {
    let all = '';
    for (const pod of await this.jobPods(namespace, job)) {
      for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
        try {
          const text = await this.core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace, container: container.name });
          log(text);
          all += text;
        } catch (error) {
          log(`keelson: no logs of ${pod.metadata?.name}/${container.name}: ${apiMessage(error)}\n`);
        }
      }
    }
    return all;
  }

  /** Success or cancelled: delete. Failure: keep until `keepFailed` has passed. `debug`: keep everything. */
  private async cleanUp(namespace: string, result: ExecutionResult, debug: boolean, keepFailedMs: number, aborted: boolean): Promise<void> {
    if (debug) return;
    if (result.ok || aborted || keepFailedMs <= 0) {
      await this.core.deleteNamespace({ name: namespace }).catch((error: unknown) => {
        if (statusOf(error) !== 404) throw error;
      });
      return;
    }
    const expiresAt = new Date(Date.now() + keepFailedMs).toISOString();
    await this.core.patchNamespace(
      { name: namespace, body: [{ op: 'add', path: `/metadata/annotations/${EXPIRES.replace('/', '~1')}`, value: expiresAt }] },
    ).catch((error: unknown) => { if (statusOf(error) !== 404) throw error; });
  }

  private async removeExpiredNamespaces(): Promise<void> {
    const list = await this.core.listNamespace({ labelSelector: `${MANAGED_BY}=keelson` });
    const now = Date.now();
    for (const ns of list.items) {
      const expires = Date.parse(ns.metadata?.annotations?.[EXPIRES] ?? '');
      if (Number.isFinite(expires) && expires < now) await this.core.deleteNamespace({ name: ns.metadata!.name! });
    }
  }
}

/**
 * A template named by the pipeline: relative to the committed tree and inside it (symlinks
 * resolved), so a commit cannot make keelson render a file of the machine it runs on.
 */
async function templateInTree(sourceDir: string, template: string): Promise<string> {
  try {
    return await resolveInTree(sourceDir, template, 'kubernetes.template');
  } catch (error) {
    if (error instanceof TreePathError) throw new RunStepError(RunReason.InvalidPipeline, error.message);
    throw error;
  }
}

/** A failed Job, described by its failed pod: evicted, or the builder's exit code and message. */
function jobFailure(job: string, pods: readonly V1Pod[]): ExecutionResult {
  const failed = pods.filter((p) => p.status?.phase === 'Failed');
  for (const pod of failed) {
    const problem = podProblem(pod);
    if (problem) return { ok: false, reason: RunReason.BuildFailed, message: `builder Job ${job} failed: ${problem}` };
  }
  // A builder that builds in an init container (buildah's template) fails there, before the main one starts.
  const terminated = failed.flatMap((p) => [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])])
    .map((c) => c.state?.terminated).find((t) => t && t.exitCode !== 0);
  const detail = terminated?.message?.trim() ? `: ${terminated.message.trim().split('\n').slice(-3).join(' ')}` : '';
  return {
    ok: false, reason: RunReason.BuildFailed,
    message: `builder Job ${job} failed${terminated ? ` (exit code ${terminated.exitCode})` : ''}${detail}; its log is in the run log`,
    ...(terminated ? { exitCode: terminated.exitCode } : {}),
  };
}

/** Runs `command` in the pod with the file as stdin; resolves to the server's final status. */
async function execWithStdin(kc: KubeConfig, namespace: string, pod: string, container: string, command: string[], stdinFile: string, signal: AbortSignal): Promise<V1Status> {
  const stderr: Buffer[] = [];
  const sink = new Writable({ write(_chunk, _enc, done) { done(); } });
  const errors = new Writable({ write(chunk: Buffer, _enc, done) { stderr.push(chunk); done(); } });
  return new Promise<V1Status>((resolve) => {
    let settled = false;
    const settle = (status: V1Status) => {
      if (settled) return;
      settled = true;
      // What the command said on stderr is the useful part; the server's message repeats the command.
      const text = Buffer.concat(stderr).toString().trim();
      resolve(text && status.status !== 'Success' ? { ...status, message: `${text} (${exitStatus(status.message)})` } : status);
    };
    new Exec(kc)
      .exec(namespace, pod, container, command, sink, errors, createReadStream(stdinFile), false, settle)
      .then((socket) => {
        const onAbort = () => socket.close();
        signal.addEventListener('abort', onAbort, { once: true });
        socket.on('close', () => {
          signal.removeEventListener('abort', onAbort);
          settle({ status: 'Failure', message: signal.aborted ? 'aborted' : 'the exec stream closed without a status' });
        });
      }, (error: unknown) => {
        // e.g. 403 when the identity lacks get + create on pods/exec; repeated, then reported
        settle({ status: 'Failure', message: `the exec request was refused: ${apiMessage(error)}` });
      });
  });
}

function exitStatus(message: string | undefined): string {
  return /exit (?:status|code) \d+/.exec(message ?? '')?.[0] ?? message ?? 'failed';
}

async function retryUntil<T>(signal: AbortSignal, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw new RunStepError(RunReason.SourceFailed, `gave up after ${timeoutMs} ms: ${apiMessage(error)}`);
      await sleep(200, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message from a client error, else the error's. */
function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch { /* not JSON */ }
  }
  if (typeof (body as { message?: unknown } | null)?.message === 'string') return (body as { message: string }).message;
  if (error instanceof Error) return messageOf(error);
  // the exec client rejects with the server's Status object
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : JSON.stringify(error);
}
