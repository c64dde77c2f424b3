/** What the Kubernetes executor tests share: a source tree, a request, a template with a twist. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PipelineSpec } from '../../../src/config/pipeline.js';
import { newRunId } from '../../../src/domain/index.js';
import { runNamespace } from '../../../src/executor/kubernetes/index.js';
import type { ExecutionRequest } from '../../../src/executor/types.js';

export const REPO = 'https://example.test/team/app.git';

export interface SourceFixture {
  readonly dir: string;
  readonly source: string;
  remove(): Promise<void>;
}

/** A temp dir with a small committed tree in `source/`. */
export async function sourceFixture(): Promise<SourceFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'keelson-k8s-exec-'));
  const source = join(dir, 'source');
  await mkdir(join(source, 'src'), { recursive: true });
  await writeFile(join(source, 'Dockerfile'), 'FROM scratch\nCOPY src /src\n');
  await writeFile(join(source, 'src', 'main.txt'), 'hello from the committed tree\n');
  return { dir, source, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestRequest extends ExecutionRequest {
  readonly namespace: string;
  readonly logs: string[];
  readonly abort: AbortController;
}

export function testRequest(source: string, pipeline: unknown, registry = '127.0.0.1:5000'): TestRequest {
  const logs: string[] = [];
  const abort = new AbortController();
  const runId = newRunId();
  return {
    runId,
    namespace: runNamespace(REPO, 'main', runId),
    source: { dir: source, repo: REPO, branch: 'main', commit: 'a'.repeat(40) },
    pipeline: PipelineSpec.parse(pipeline),
    registry,
    log: (text) => logs.push(text),
    signal: abort.signal,
    logs,
    abort,
  };
}

/**
 * A Node name that does not exist, so kwok leaves a pod bound to it alone and the test plays its
 * kubelet. A new name each time: the pod garbage collector fails pods of a node that has been
 * missing for 40 s, counted per name.
 */
export function unmanagedNode(): string {
  return `keelson-test-no-kubelet-${randomBytes(4).toString('hex')}`;
}

const POD_SPEC = '    spec:\n      restartPolicy: Never\n';

/**
 * builder-kaniko.yaml with `insert` added to the pod template's spec (e.g. `nodeName: X`) or
 * `labels` to its metadata, written to `dir`.
 */
export async function kanikoVariant(dir: string, name: string, change: { spec?: string; podLabels?: Record<string, string>; podAnnotations?: Record<string, string> }): Promise<string> {
  let text = await readFile(new URL('../../../templates/builder-kaniko.yaml', import.meta.url), 'utf8');
  if (!text.includes(POD_SPEC)) throw new Error('builder-kaniko.yaml changed shape; update kanikoVariant');
  if (change.spec) text = text.replace(POD_SPEC, `${POD_SPEC}      ${change.spec}\n`);
  const meta: string[] = [];
  for (const [key, value] of Object.entries(change.podLabels ?? {})) meta.push(`        ${key}: ${JSON.stringify(value)}`);
  if (meta.length) text = text.replace('        keelson.dev/run: {{ID}}\n    spec:', `        keelson.dev/run: {{ID}}\n${meta.join('\n')}\n    spec:`);
  const notes = Object.entries(change.podAnnotations ?? {}).map(([key, value]) => `        ${key}: ${JSON.stringify(value)}`);
  if (notes.length) text = text.replace('    spec:\n      restartPolicy', `      annotations:\n${notes.join('\n')}\n    spec:\n      restartPolicy`);
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}
