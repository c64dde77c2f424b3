import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { BatchV1Api, CoreV1Api, Exec, KubeConfig, Watch, type V1Job, type V1Pod, type V1Status } from '@kubernetes/client-node';
import { dnsLabel } from '../../domain/index.js';
import { RunReason } from '../../store/types.js';
import { renderTemplate, templateValuesFor } from '../../template/index.js';
import { messageOf } from '../../errors.js';
import type { ExecutionRequest, ExecutionResult, Executor } from '../types.js';
import { packSource, SourceTooLargeError, unpackCommand } from './source-archive.js';

const MANAGED_BY = 'app.kubernetes.io/managed-by';
const RUN_LABEL = 'keelson.dev/run';
const EXPIRES = 'keelson.dev/expires-at';
const DEFAULT_TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));

export interface KubernetesExecutorOptions {
  /** Cluster access: in-cluster service account or the user's kubeconfig. */
  readonly kubeConfig: KubeConfig;
  /** Image of the copy pod; needs sh, head, sha256sum and tar. @default 'busybox:1.36' */
  readonly copyImage?: string;
  /** Where `builder-<builder>.yaml` templates live. @default the package's templates/ */
  readonly templatesDir?: string;
  /** How long the copy pod may take to start. @default 120000 ms */
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
 * tree (copied in through a short-lived pod as a checksummed tar over exec), then a builder Job
 * rendered from a template, followed to its end; its logs go to the run log. Successful runs'
 * namespaces are deleted; failed ones are kept for `keepFailed` (all of them with `debug`).
 */
export class KubernetesExecutor implements Executor {
  readonly kind = 'kubernetes' as const;
  private readonly options: Required<KubernetesExecutorOptions>;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;

  constructor(options: KubernetesExecutorOptions) {
    this.options = {
      kubeConfig: options.kubeConfig,
      copyImage: options.copyImage ?? 'busybox:1.36',
      templatesDir: options.templatesDir ?? DEFAULT_TEMPLATES,
      podStartTimeoutMs: options.podStartTimeoutMs ?? 120_000,
    };
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.batch = options.kubeConfig.makeApiClient(BatchV1Api);
  }

  async execute(request: ExecutionRequest): Promise<ExecutionResult> {
    const { pipeline, log } = request;
    const spec = pipeline.kubernetes;
    if (!pipeline.build) {
      return { ok: false, reason: RunReason.BuildFailed, message: 'the kubernetes executor builds images: add a build: section to the pipeline' };
    }
    const timeout = AbortSignal.timeout(pipeline.timeout.milliseconds);
    const signal = AbortSignal.any([request.signal, timeout]);
    const namespace = dnsLabel(`keelson-${request.runId}`);
    const image = `${request.registry ? `${request.registry}/` : ''}${pipeline.build.image}:${dnsLabel(request.source.branch, 128)}`;
    let result: ExecutionResult;
    try {
      await this.removeExpiredNamespaces().catch(() => undefined);
      log(`keelson: namespace ${namespace}\n`);
      await this.core.createNamespace({
        body: { metadata: { name: namespace, labels: { [MANAGED_BY]: 'keelson', [RUN_LABEL]: request.runId } } },
      });
      await this.copySource(request, namespace, signal);
      const job = await this.createBuilderJob(request, namespace, image);
      log(`keelson: builder Job ${job} (${spec.builder}) for ${image}\n`);
      const outcome = await waitForJob(this.options.kubeConfig, namespace, job, signal);
      const pods = await this.copyLogs(namespace, job, log);
      if (outcome === 'Complete') {
        result = { ok: true, reason: RunReason.StepsSucceeded, message: `built ${image}`, image: { ref: image, pushed: true } };
      } else {
        const exitCode = pods.flatMap((p) => p.status?.containerStatuses ?? []).map((c) => c.state?.terminated?.exitCode).find((c) => c !== undefined && c !== 0);
        result = { ok: false, reason: RunReason.BuildFailed, message: `builder Job ${job} failed${exitCode ? ` (exit code ${exitCode})` : ''}`, exitCode };
      }
    } catch (error) {
      if (signal.aborted) {
        result = timeout.aborted
          ? { ok: false, reason: RunReason.TimedOut, message: `run exceeded its timeout of ${pipeline.timeout}` }
          : { ok: false, reason: RunReason.Superseded, message: 'run was cancelled' };
      } else if (error instanceof RunStepError) {
        result = { ok: false, reason: error.reason, message: error.message, exitCode: error.exitCode };
      } else {
        result = { ok: false, reason: RunReason.BuildFailed, message: `kubernetes: ${apiMessage(error)}` };
      }
    }
    await this.cleanUp(namespace, result, spec.debug, spec.keepFailed.milliseconds, signal.aborted).catch((error: unknown) => {
      log(`keelson: cleaning up namespace ${namespace} failed: ${apiMessage(error)}\n`);
    });
    return result;
  }

  private async copySource(request: ExecutionRequest, namespace: string, signal: AbortSignal): Promise<void> {
    const spec = request.pipeline.kubernetes;
    await this.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: 'source' },
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
      const pod = 'copy-source';
      // A new namespace gets its default ServiceAccount a moment later; admission refuses pods until then.
      await retryUntil(signal, 30_000, () => this.core.readNamespacedServiceAccount({ name: 'default', namespace }));
      await this.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: pod, labels: { [MANAGED_BY]: 'keelson', [RUN_LABEL]: request.runId } },
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
            volumes: [{ name: 'source', persistentVolumeClaim: { claimName: 'source' } }],
          },
        },
      });
      await retryUntil(signal, this.options.podStartTimeoutMs, async () => {
        const p = await this.core.readNamespacedPod({ name: pod, namespace });
        if (p.status?.phase !== 'Running') throw new Error(`copy pod is ${p.status?.phase ?? 'unknown'}`);
      });
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
        status = await execWithStdin(this.options.kubeConfig, namespace, pod, 'copy', unpackCommand(archive.bytes, archive.sha256), archive.file, signal);
      }
      if (status.status !== 'Success') {
        throw new RunStepError(RunReason.SourceFailed, `copying the source into the volume failed: ${status.message ?? status.reason ?? 'unknown error'}`);
      }
      await this.core.deleteNamespacedPod({ name: pod, namespace, gracePeriodSeconds: 0 });
    } finally {
      await archive.dispose();
    }
  }

  private async createBuilderJob(request: ExecutionRequest, namespace: string, image: string): Promise<string> {
    const { kubernetes: spec, build } = request.pipeline;
    const templateName = spec.template ?? join(this.options.templatesDir, `builder-${spec.builder}.yaml`);
    const values = {
      ...templateValuesFor({
        commit: request.source.commit,
        branch: request.source.branch,
        url: request.source.repo,
        runId: request.runId,
        namespace,
        image,
        registry: request.registry ?? '',
      }),
      Context: build!.context,
      Dockerfile: build!.dockerfile,
    };
    const rendered = renderTemplate(await readFile(templateName, 'utf8'), values, { templateName, syntax: 'handlebars' });
    const jobs = rendered.documents.filter((d) => d.kind === 'Job') as V1Job[];
    if (jobs.length !== 1) throw new RunStepError(RunReason.BuildFailed, `${templateName}: expected exactly one Job, found ${jobs.length}`);
    const job = jobs[0]!;
    const created = await this.batch.createNamespacedJob({ namespace, body: { ...job, metadata: { ...job.metadata, namespace } } });
    return created.metadata!.name!;
  }

  private async copyLogs(namespace: string, job: string, log: (text: string) => void): Promise<V1Pod[]> {
    const pods = (await this.core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items;
    for (const pod of pods) {
      for (const container of pod.spec?.containers ?? []) {
        try {
          const text = await this.core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace, container: container.name });
          log(text);
        } catch (error) {
          log(`keelson: no logs of ${pod.metadata?.name}/${container.name}: ${apiMessage(error)}\n`);
        }
      }
    }
    return pods;
  }

  /** Success: delete. Failure: keep until `keepFailed` has passed. `debug`: keep everything. */
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
      { name: namespace, body: [{ op: 'add', path: '/metadata/annotations', value: { [EXPIRES]: expiresAt } }] },
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

type JobOutcome = 'Complete' | 'Failed';

function outcomeOf(job: V1Job | undefined): JobOutcome | undefined {
  for (const condition of job?.status?.conditions ?? []) {
    if (condition.status === 'True' && (condition.type === 'Complete' || condition.type === 'Failed')) return condition.type;
  }
  return undefined;
}

/**
 * Follows one Job until it completes or fails: list, then watch from the list's resourceVersion.
 * Whenever the watch ends (the server's timeout, a dropped connection, or 410 Gone when that
 * version is too old) it lists again, so no event is missed and no stale version is reused.
 */
export async function waitForJob(kc: KubeConfig, namespace: string, name: string, signal: AbortSignal): Promise<JobOutcome> {
  const batch = kc.makeApiClient(BatchV1Api);
  const fieldSelector = `metadata.name=${name}`;
  for (;;) {
    signal.throwIfAborted();
    const list = await batch.listNamespacedJob({ namespace, fieldSelector });
    const done = outcomeOf(list.items[0]);
    if (done) return done;
    const outcome = await new Promise<JobOutcome | 'relist'>((resolve, reject) => {
      let controller: AbortController | undefined;
      const finish = (value: JobOutcome | 'relist') => {
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        resolve(value);
      };
      const onAbort = () => { controller?.abort(); reject(signal.reason); };
      signal.addEventListener('abort', onAbort, { once: true });
      new Watch(kc).watch(
        `/apis/batch/v1/namespaces/${namespace}/jobs`,
        { fieldSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
        (type, object: V1Job) => {
          if (type === 'ERROR') finish('relist'); // 410 Gone arrives as an ERROR event
          else if (type !== 'BOOKMARK') {
            const result = outcomeOf(object);
            if (result) finish(result);
          }
        },
        () => finish('relist'),
      ).then((c) => { controller = c; }, () => finish('relist'));
    });
    if (outcome !== 'relist') return outcome;
  }
}

/** Runs `command` in the pod with the file as stdin; resolves to the server's final status. */
async function execWithStdin(kc: KubeConfig, namespace: string, pod: string, container: string, command: string[], stdinFile: string, signal: AbortSignal): Promise<V1Status> {
  const stderr: Buffer[] = [];
  const sink = new Writable({ write(_chunk, _enc, done) { done(); } });
  const errors = new Writable({ write(chunk: Buffer, _enc, done) { stderr.push(chunk); done(); } });
  return new Promise<V1Status>((resolve, reject) => {
    let settled = false;
    const settle = (status: V1Status) => {
      if (settled) return;
      settled = true;
      const text = Buffer.concat(stderr).toString().trim();
      resolve(text && status.status !== 'Success' ? { ...status, message: `${status.message ?? ''} ${text}`.trim() } : status);
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
      }, reject);
  });
}

async function retryUntil<T>(signal: AbortSignal, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw new RunStepError(RunReason.SourceFailed, `gave up after ${timeoutMs} ms: ${apiMessage(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
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
  return messageOf(error);
}
