import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CoreV1Api } from '@kubernetes/client-node';
import { PipelineSpec } from '../../../src/config/pipeline.js';
import { dnsLabel, newRunId } from '../../../src/domain/index.js';
import { KubernetesExecutor } from '../../../src/executor/kubernetes/index.js';
import type { ExecutionRequest } from '../../../src/executor/types.js';
import { FAIL_POD_LABEL, eventually, startCluster, type RunningCluster } from '../../support/cluster.js';

describe('KubernetesExecutor against a kwok cluster', function () {
  this.timeout(120_000);
  let cluster: RunningCluster | undefined;
  let dir: string;
  let core: CoreV1Api;

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await startCluster();
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    dir = await mkdtemp(join(tmpdir(), 'keelson-k8s-exec-'));
    await mkdir(join(dir, 'source', 'src'), { recursive: true });
    await writeFile(join(dir, 'source', 'Dockerfile'), 'FROM scratch\nCOPY src /src\n');
    await writeFile(join(dir, 'source', 'src', 'main.txt'), 'hello from the committed tree\n');
  });
  after(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function request(pipeline: unknown, logs: string[]): ExecutionRequest {
    return {
      runId: newRunId(),
      source: { dir: join(dir, 'source'), repo: 'https://example.test/team/app.git', branch: 'main', commit: 'a'.repeat(40) },
      pipeline: PipelineSpec.parse(pipeline),
      registry: '127.0.0.1:5000',
      log: (text) => logs.push(text),
      signal: new AbortController().signal,
    };
  }

  it('copies the tree into the run volume, runs the builder Job, keeps its logs and deletes the namespace', async () => {
    await cluster!.writePodLogs(['kaniko: building', 'kaniko: pushed']);
    const logs: string[] = [];
    const req = request({ build: { image: 'team/app' } }, logs);
    const result = await new KubernetesExecutor({ kubeConfig: cluster!.kubeConfig() }).execute(req);
    expect(result, `${result.message}\n${logs.join("")}`).to.include({ ok: true });
    expect(result.image?.ref).to.equal('127.0.0.1:5000/team/app:main');
    expect(logs.join('')).to.contain('kaniko: building\nkaniko: pushed\n');
    const namespace = dnsLabel(`keelson-${req.runId}`);
    // kwok ran the copy pod's unpack command in the namespace's exec directory
    const execDir = join(cluster!.workdir, 'ns', namespace, 'exec');
    expect(await readFile(join(execDir, 'src', 'main.txt'), 'utf8')).to.equal('hello from the committed tree\n');
    expect(await readFile(join(execDir, 'Dockerfile'), 'utf8')).to.contain('FROM scratch');
    const ns = await core.readNamespace({ name: namespace }).catch(() => undefined);
    expect(ns === undefined || ns.status?.phase === 'Terminating').to.equal(true);
  });

  it('reports a failed builder Job with its exit code and keeps the namespace for a while', async () => {
    const template = join(dir, 'failing-builder.yaml');
    const kaniko = await readFile(new URL('../../../templates/builder-kaniko.yaml', import.meta.url), 'utf8');
    await writeFile(template, kaniko.replace(
      '      labels:\n        app.kubernetes.io/managed-by: keelson\n        keelson.dev/run: {{ID}}\n    spec:',
      `      labels:\n        ${FAIL_POD_LABEL}: "true"\n      annotations:\n        ${FAIL_POD_LABEL}/exit-code: "7"\n    spec:`,
    ));
    const logs: string[] = [];
    const req = request({ build: { image: 'team/app' }, kubernetes: { template } }, logs);
    const result = await new KubernetesExecutor({ kubeConfig: cluster!.kubeConfig() }).execute(req);
    expect(result, logs.join('')).to.include({ ok: false, reason: 'BuildFailed', exitCode: 7 });
    const ns = await core.readNamespace({ name: dnsLabel(`keelson-${req.runId}`) });
    expect(Date.parse(ns.metadata?.annotations?.['keelson.dev/expires-at'] ?? '')).to.be.greaterThan(Date.now());
  });

  it('refuses a source tree over maxSourceBytes before copying anything', async () => {
    const logs: string[] = [];
    const req = request({ build: { image: 'team/app' }, kubernetes: { maxSourceBytes: 1024 } }, logs);
    const result = await new KubernetesExecutor({ kubeConfig: cluster!.kubeConfig() }).execute(req);
    expect(result).to.include({ ok: false, reason: 'SourceFailed' });
    expect(result.message).to.contain('maxSourceBytes');
    const pods = await eventually(() => core.listNamespacedPod({ namespace: dnsLabel(`keelson-${req.runId}`) }));
    expect(pods.items).to.deep.equal([]);
  });
});
