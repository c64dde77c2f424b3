/**
 * What a user sees of a real daemon's work, filled in: the trace of a commit (run → digest →
 * workloads rolled → ci result) in /api/runs/ID, the run page and `keelson runs --json`; the
 * workloads, watches and dependencies in /api/*; and /metrics counters that moved. A real
 * `keelson daemon` builds with buildah, pushes to docker-registry and rolls Deployments on the
 * test cluster (see traced-daemon.ts).
 */
import { expect } from 'chai';
import type { DependencyInfo, WatchInfo, WorkloadInfo } from '../../../src/server/index.js';
import type { TracedRun } from '../../../src/trace/index.js';
import { runKeelson } from '../../support/cli.js';
import { until } from './daemon-process.js';
import { startTracedDaemon, type TracedDaemon } from './traced-daemon.js';

/** The value of one sample of `/metrics` text, 0 when absent. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of metrics.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',');
    if (wanted.every((w) => have.includes(w))) return Number(match[3]);
  }
  return 0;
}

describe('keelson daemon: the trace and the status page, filled from real work', function () {
  this.timeout(300_000);
  let scene: TracedDaemon;

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    scene = await startTracedDaemon();
  });
  after(async function () {
    this.timeout(60_000);
    await scene?.stop();
  });

  it('traces the rolled run: /api/runs/ID names the workload, container and digest it went to', async () => {
    const { rolled, first, namespace } = scene;
    const traced = await scene.api<TracedRun>(`/api/runs/${rolled.id}`);
    expect(traced.commit).to.equal(rolled.commit);
    expect(traced.image?.digest).to.match(/^sha256:[0-9a-f]{64}$/);
    const [rollout] = traced.trace.rollouts;
    expect(rollout).to.include({ workload: `${namespace}/deployment/web`, container: 'app', digest: traced.image!.digest, image: `${scene.repository}:main@${traced.image!.digest}` });
    expect(Date.parse(rollout!.at)).to.be.at.least(Date.parse(rolled.finishedAt!));
    // gated waits for its approval and frozen refused the patch: not rolled, so not in the trace.
    expect(traced.trace.rollouts.map((r) => r.workload)).to.deep.equal([`${namespace}/deployment/web`]);
    // The first digest was only the baseline.
    expect((await scene.api<TracedRun>(`/api/runs/${first.id}`)).trace.rollouts).to.deep.equal([]);
    // The list carries the same trace.
    const listed = (await scene.api<TracedRun[]>('/api/runs')).find((r) => r.id === rolled.id);
    expect(listed?.trace.rollouts).to.deep.equal(traced.trace.rollouts);
  });

  it('shows the trace on the run page and in keelson runs --json', async () => {
    const page = (await (await fetch(`${scene.daemon.url}/runs/${scene.rolled.id}`)).text()).replaceAll('<wbr>', '');
    const rolledOut = /<dd id="rolled-out">([\s\S]*?)<\/dd>/.exec(page)?.[1] ?? '';
    expect(rolledOut).to.include(`${scene.namespace}/deployment/web`).and.not.include('nothing');
    expect(page).to.include(scene.rolled.image!.digest!);
    const cli = await runKeelson(['runs', '--json', '--state-dir', scene.stateDir]);
    expect(cli.status, cli.stderr).to.equal(0);
    const fromCli = (JSON.parse(cli.stdout) as TracedRun[]).find((r) => r.id === scene.rolled.id);
    expect(fromCli?.trace.rollouts.map((r) => r.workload)).to.deep.equal([`${scene.namespace}/deployment/web`]);
  });

  it('fills every column of /api/workloads: policy, container, current image, candidate, last rollout', async () => {
    const workloads = await scene.api<WorkloadInfo[]>('/api/workloads');
    const byKey = new Map(workloads.map((w) => [w.key.split('/').pop(), w]));
    const web = byKey.get('web')!;
    expect(web).to.include({ policy: 'force', pollSchedule: '@every 1s', approvals: 0 });
    expect(web.images).to.have.length(1);
    expect(web.images![0]).to.include({ container: 'app', current: `${scene.repository}:main@${scene.rolled.image!.digest}` });
    expect(web.images![0]!.rolledOut).to.include({ image: `${scene.repository}:main@${scene.rolled.image!.digest}`, digest: scene.rolled.image!.digest });
    expect(web.lastDecision?.outcome).to.be.a('string');
    const gated = byKey.get('gated')!;
    expect(gated).to.include({ policy: 'force', approvals: 1 });
    expect(gated.images![0]).to.include({ candidate: `${scene.repository}:main@${scene.rolled.image!.digest}`, candidateReason: 'AwaitingApproval' });
    expect(gated.lastDecision?.outcome).to.equal('AwaitingApproval');
    expect(byKey.get('orphan')).to.include({ policy: 'minor' });
    // The API server refused frozen's patch: the image it was not rolled to is its candidate.
    const frozen = byKey.get('frozen')!;
    expect(frozen.lastDecision?.outcome).to.equal('Failed');
    expect(frozen.lastDecision?.message).to.include('frozen');
    expect(frozen.images![0]).to.include({ candidate: `${scene.repository}:main@${scene.rolled.image!.digest}`, candidateReason: 'Failed' });
    expect(frozen.images![0]!.rolledOut).to.equal(undefined);
  });

  it('shows a watch schedule, its next check, and the failure of its last run', async () => {
    const [watch] = await scene.api<WatchInfo[]>('/api/watches');
    expect(watch).to.include({ schedule: '@every 5s', failures: 0 });
    expect(Date.parse(watch!.nextCheckAt!)).to.be.a('number').and.not.NaN;
    expect(watch!.lastRun).to.include({ id: scene.rolled.id, phase: 'succeeded' });

    const broken = await scene.commit('third build, broken', { broken: true });
    expect(broken.phase).to.equal('failed');
    const after = await until(async () => {
      const [w] = await scene.api<WatchInfo[]>('/api/watches');
      return w?.lastRun?.id === broken.id ? w : undefined;
    }, 'the watch to show the failed run');
    expect(after.lastRun).to.include({ phase: 'failed', reason: broken.reason, message: broken.message });
    expect(after.failures).to.equal(0);
    const page = await (await fetch(scene.daemon.url)).text();
    const row = /<section id="watches">([\s\S]*?)<\/section>/.exec(page)?.[1] ?? '';
    expect(row).to.include('phase-failed').and.include(broken.reason).and.include('@every 5s');
  });

  it('lists a held dependency with its replicas and holder, then the ci result in the trace', async () => {
    const ci = await scene.startCi('ci-trace-1');
    // The daemon learns of the scale-up through its watch of the workloads, a moment after the API.
    const minio = await until(async () => (await scene.api<DependencyInfo[]>('/api/dependencies')).find((d) => d.key.endsWith('/minio') && d.readyReplicas === 1),
      'the daemon to see minio ready');
    expect(minio).to.deep.equal({
      key: `${scene.namespace}/deployment/minio`, replicas: 1, readyReplicas: 1, holders: ['ci-trace-1'], declaredBy: [`${scene.namespace}/deployment/web`],
    });
    const web = await until(async () => (await scene.api<WorkloadInfo[]>('/api/workloads')).find((w) => w.key.endsWith('/web') && w.heldBy), 'web to be held');
    expect(web.heldBy).to.deep.equal(['ci-trace-1']);

    expect(await ci.finish(0)).to.equal(0);
    const traced = await until(async () => {
      const run = await scene.api<TracedRun>(`/api/runs/${scene.rolled.id}`);
      return run.trace.ci.length > 0 ? run : undefined;
    }, 'the ci result in the trace');
    expect(traced.trace.ci[0]).to.include({ workload: `${scene.namespace}/deployment/web`, run: 'ci-trace-1', exitCode: 0 });
    const released = await until(async () => (await scene.api<DependencyInfo[]>('/api/dependencies')).find((d) => d.key.endsWith('/minio') && d.replicas === 0),
      'minio to be released');
    expect(released.holders).to.deep.equal([]);
  });

  it('counts the work in /metrics: polls, registry errors by kind, rollouts, push-to-patch time, approvals, runs', async () => {
    const metrics = await (await fetch(`${scene.daemon.url}/metrics`)).text();
    expect(sample(metrics, 'keelson_registry_polls_total', { result: 'ok' })).to.be.greaterThan(0);
    // orphan's image does not exist: every check of it is a 404.
    expect(sample(metrics, 'keelson_registry_errors_total', { kind: 'not_found' })).to.be.greaterThan(0);
    expect(sample(metrics, 'keelson_rollouts_total', { outcome: 'Applied' })).to.be.at.least(1);
    expect(sample(metrics, 'keelson_rollouts_total', { outcome: 'AwaitingApproval' })).to.be.at.least(1);
    expect(sample(metrics, 'keelson_push_to_rollout_seconds_count')).to.be.at.least(1);
    expect(sample(metrics, 'keelson_runs_total', { phase: 'succeeded', kind: 'build' })).to.be.at.least(2);
    expect(sample(metrics, 'keelson_run_duration_seconds_count', { phase: 'succeeded' })).to.be.at.least(2);
    expect(metrics).to.match(/^keelson_run_queue_length 0$/m);
    expect(sample(metrics, 'keelson_rollout_failures_total')).to.be.at.least(1);
    expect(sample(metrics, 'keelson_rollouts_total', { outcome: 'Failed' })).to.be.at.least(1);
    expect(sample(metrics, 'keelson_webhook_deliveries_total', { source: 'registry', result: 'accepted' })).to.be.at.least(2);
    // The approval gauge is refreshed by the approval check (every 5s).
    await until(async () => sample(await (await fetch(`${scene.daemon.url}/metrics`)).text(), 'keelson_approvals_pending') === 1, 'keelson_approvals_pending 1');
  });
});
