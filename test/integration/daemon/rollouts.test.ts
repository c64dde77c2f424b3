/**
 * `keelson daemon` end to end: a child process against the real test cluster (kube-apiserver +
 * kwok) and a real docker-registry, images pushed with buildah.
 *
 * kwok's pods report no `imageID`, so "what the pods run" is unknown here. The semver tests need
 * no digest (the spec's tag is the baseline); the kill test also holds one workload, which is the
 * case where only the stored update (not the pods, not the registry watcher's baseline) can tell
 * keelson after a restart that a rollout is still owed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import { formatLeaseSet, HOLD_ANNOTATION, withHolder } from '../../../src/rollout/index.js';
import type { JobStatus } from '../../../src/registry-watch/index.js';
import { runKeelson } from '../../support/cli.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { pushImage } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';
import { startDaemon, stopAllDaemons, until, type DaemonProcess } from './daemon-process.js';
import { deploymentBody } from '../../support/kube.js';

const NS = `daemon-it-${randomBytes(3).toString('hex')}`;

function deployment(name: string, image: string, annotations: Record<string, string>): V1Deployment {
  return deploymentBody({ name, namespace: NS, image, annotations });
}

/** What `keelson policy` says the workload should roll to from `current`, or `current` when nothing. */
async function policyChoice(policy: string, current: string, candidates: readonly string[]): Promise<string> {
  const result = await runKeelson(['policy', '--policy', policy, '--current', current, '--candidates', candidates.join(',')]);
  expect(result.status, result.stderr).to.equal(0);
  return result.stdout.trim() || current;
}

describe('keelson daemon: rollouts on the test cluster from a real registry', function () {
  this.timeout(180_000);
  let cluster: RunningCluster;
  let registry: RunningRegistry | undefined;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  const dirs: string[] = [];
  let daemon: DaemonProcess | undefined;
  let notifications: ContractServer | undefined;

  const stateDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'keelson-daemon-it-'));
    dirs.push(dir);
    return dir;
  };
  const daemonArgs = (dir: string): string[] => ['--kubeconfig', cluster.kubeconfigPath, '--namespace', NS, '--state-dir', dir];
  const read = (name: string) => apps.readNamespacedDeployment({ name, namespace: NS });
  const imageOf = async (name: string): Promise<string | undefined> => (await read(name)).spec?.template?.spec?.containers[0]?.image;
  const updateEvents = async (name: string): Promise<number> =>
    (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=ImageUpdated` })).items.length;
  const jobOf = async (d: DaemonProcess, repository: string): Promise<JobStatus | undefined> => {
    const response = await fetch(`${d.url}/api/registry`);
    return ((await response.json()) as JobStatus[]).find((job) => job.key === repository);
  };
  /** Resolves once the daemon has checked `repository` `count` more times. */
  const checks = async (d: DaemonProcess, repository: string, count: number): Promise<void> => {
    let seen = (await jobOf(d, repository))?.lastCheckedAt;
    for (let i = 0; i < count; i++) {
      const before = seen;
      seen = await until(async () => {
        const at = (await jobOf(d, repository))?.lastCheckedAt;
        return at !== undefined && at !== before ? at : undefined;
      }, `check ${i + 1} of ${repository}`);
    }
  };

  before(async function () {
    this.timeout(60 * 60_000); // a cold build of the cluster binaries
    cluster = await sharedCluster();
    registry = await startRegistry();
    apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await until(() => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }), 'the default service account');
    // Rollout notifications go to a generic webhook that checks each delivery against its contract.
    notifications = await startContractServer({});
    const dir = await stateDir();
    await writeFile(join(dir, 'keelson.yaml'), [
      'report:',
      '  notifications:',
      `    - { type: webhook, url: ${JSON.stringify(notifications.webhookUrl)}, events: [rollout.done, approval.needed] }`,
      '',
    ].join('\n'));
    daemon = await startDaemon([...daemonArgs(dir), '--config', join(dir, 'keelson.yaml')]);
  });

  after(async function () {
    this.timeout(60_000);
    await stopAllDaemons();
    await notifications?.stop();
    await registry?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await core?.deleteNamespace({ name: NS }).catch(() => undefined);
  });

  it('rolls a pushed image on the next poll, exactly once, to what keelson policy picks; one registry job for both workloads', async () => {
    const repo = `${registry!.host}/team/poll`;
    await pushImage(registry!, 'team/poll', '1.0.0', { content: 'poll 1.0.0' });
    const poll = { 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 1s' };
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('minor', `${repo}:1.0.0`, { ...poll, 'keel.sh/policy': 'minor' }) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('major', `${repo}:1.0.0`, { ...poll, 'keel.sh/policy': 'major' }) });
    const job = await until(async () => {
      const found = await jobOf(daemon!, repo);
      return found?.lastCheckedAt && found.targetIds.length === 2 ? found : undefined;
    }, 'the registry job of both workloads');
    expect(job.mode).to.equal('tags');
    expect(job.schedule).to.equal('@every 1s');
    expect(daemon!.logs.filter((l) => l.msg === 'registry change')).to.have.length(0);

    await pushImage(registry!, 'team/poll', '1.1.0', { content: 'poll 1.1.0' });
    const step1 = ['1.0.0', '1.1.0'];
    expect(await policyChoice('minor', '1.0.0', step1)).to.equal('1.1.0');
    expect(await policyChoice('major', '1.0.0', step1)).to.equal('1.1.0');
    await until(async () => (await imageOf('minor')) === `${repo}:1.1.0` && (await imageOf('major')) === `${repo}:1.1.0`, 'both to roll to 1.1.0');
    // The poll found it: one registry change for the repository, with both targets.
    const change = await daemon!.waitForLog((l) => l.msg === 'registry change' && l.newTag === '1.1.0', 'the registry change');
    expect(change).to.include({ repository: repo, oldTag: '1.0.0', targets: 2 });

    await pushImage(registry!, 'team/poll', '2.0.0', { content: 'poll 2.0.0' });
    const step2 = ['1.0.0', '1.1.0', '2.0.0'];
    const majorTo = await policyChoice('major', '1.1.0', step2);
    const minorTo = await policyChoice('minor', '1.1.0', step2);
    expect([majorTo, minorTo]).to.deep.equal(['2.0.0', '1.1.0']);
    await until(async () => (await imageOf('major')) === `${repo}:${majorTo}`, `major to roll to ${majorTo}`);
    // More polls of the same tags change nothing: each update was applied once.
    await checks(daemon!, repo, 3);
    expect(await imageOf('minor')).to.equal(`${repo}:${minorTo}`);
    expect((await read('minor')).metadata?.generation).to.equal(2);
    expect((await read('major')).metadata?.generation).to.equal(3);
    expect(await updateEvents('minor')).to.equal(1);
    expect(await updateEvents('major')).to.equal(2);
    expect((await read('major')).spec?.template?.metadata?.annotations?.['keelson.dev/update-time']).to.be.a('string');

    // Each applied update was announced once, as rollout.done with the image it moved to.
    type Delivery = { event?: string; rollout?: { workload?: string; image?: string; ok?: boolean } };
    const done = await until(async () => {
      const events = (notifications!.webhookEvents as Delivery[])
        .filter((e) => e.event === 'rollout.done' && [`/${NS}/minor`, `/${NS}/major`].some((end) => (e.rollout?.workload ?? '').endsWith(end)));
      return events.length >= 3 ? events : undefined;
    }, 'the rollout notifications');
    expect(done.map((e) => [e.rollout?.workload?.split('/').at(-1), e.rollout?.image, e.rollout?.ok]).sort()).to.deep.equal([
      ['major', `${repo}:1.1.0`, true], ['major', `${repo}:2.0.0`, true], ['minor', `${repo}:1.1.0`, true],
    ]);
    expect(notifications!.violations).to.deep.equal([]);
  });

  it('a Docker distribution notification (POST /webhooks/registry) checks at once, whatever the poll schedule', async () => {
    const repo = `${registry!.host}/team/hook`;
    await pushImage(registry!, 'team/hook', '1.0.0', { content: 'hook 1.0.0' });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment('hooked', `${repo}:1.0.0`, { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 1h' }),
    });
    // A new job's first check has its place in the hour (jobs are spread over their interval).
    const first = await until(async () => jobOf(daemon!, repo), 'the registry job of team/hook');
    expect(Date.parse(first.nextCheckAt) - Date.now()).to.be.within(-5_000, 3600_000);

    const digest = await pushImage(registry!, 'team/hook', '1.1.0', { content: 'hook 1.1.0' });
    const envelope = {
      events: [
        // distribution sends blob events in the same envelope; they are ignored
        { action: 'push', target: { mediaType: 'application/octet-stream', repository: 'team/hook', digest: `sha256:${'0'.repeat(64)}` }, request: { host: registry!.host } },
        {
          id: 'b7a8f3c0', timestamp: new Date().toISOString(), action: 'push',
          target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'team/hook', tag: '1.1.0', digest, url: `${registry!.url}/v2/team/hook/manifests/${digest}` },
          request: { id: 'r1', host: registry!.host, method: 'PUT', useragent: 'buildah' },
          source: { addr: 'registry:5000' },
        },
      ],
    };
    const response = await fetch(`${daemon!.url}/webhooks/registry`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' },
      body: JSON.stringify(envelope),
    });
    expect(response.status).to.equal(202);
    expect(await response.json()).to.deep.equal({ format: 'distribution', repositories: [repo] });

    await until(async () => (await imageOf('hooked')) === `${repo}:1.1.0`, 'hooked to roll to 1.1.0');
    // The check came from the webhook: the next scheduled poll is still about an hour away.
    const after = await jobOf(daemon!, repo);
    expect(Date.parse(after!.nextCheckAt) - Date.now()).to.be.greaterThan(30 * 60_000);
    expect((await read('hooked')).metadata?.generation).to.equal(2);

    // A malformed notification is refused and changes nothing.
    const bad = await fetch(`${daemon!.url}/webhooks/registry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"events": [{"action": 1}]}' });
    expect(bad.status).to.equal(400);
  });

  it('SIGKILL mid-rollout and restarts neither lose nor repeat an update; a push while down rolls once; SIGTERM exits 0', async () => {
    // The first daemon is not needed here: stopped gracefully.
    expect(await daemon!.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });
    const repo = `${registry!.host}/team/crash`;
    await pushImage(registry!, 'team/crash', '1.0.0', { content: 'crash 1.0.0' });
    const annotations = { 'keel.sh/policy': 'minor', 'keel.sh/trigger': 'poll', 'keel.sh/pollSchedule': '@every 1s' };
    const names = Array.from({ length: 12 }, (_, i) => `crash-${i}`);
    await Promise.all(names.map((name) => apps.createNamespacedDeployment({ namespace: NS, body: deployment(name, `${repo}:1.0.0`, annotations) })));
    // Held by a "running build": seen by the first daemon, rolled only by a later one.
    const now = new Date();
    const hold = formatLeaseSet(withHolder({}, 'build-1', new Date(now.getTime() + 3_600_000), now))!;
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('crash-held', `${repo}:1.0.0`, { ...annotations, [HOLD_ANNOTATION]: hold }) });
    const all = [...names, 'crash-held'];
    const dir = await stateDir();

    const first = await startDaemon(daemonArgs(dir));
    await until(async () => (await jobOf(first, repo))?.targetIds.length === all.length, 'every crash workload to be watched');
    await pushImage(registry!, 'team/crash', '1.1.0', { content: 'crash 1.1.0' });
    // Killed as soon as the rollout shows: some workloads may be patched, others not yet.
    await until(async () => {
      const list = await apps.listNamespacedDeployment({ namespace: NS });
      return list.items.some((d) => d.spec?.template?.spec?.containers[0]?.image === `${repo}:1.1.0`);
    }, 'the rollout to start', 60_000);
    expect(await first.stop('SIGKILL')).to.deep.equal({ code: null, signal: 'SIGKILL' });
    const patchedBeforeKill = (await apps.listNamespacedDeployment({ namespace: NS })).items
      .filter((d) => d.metadata?.name?.startsWith('crash-') && d.spec?.template?.spec?.containers[0]?.image === `${repo}:1.1.0`).length;
    expect(await imageOf('crash-held')).to.equal(`${repo}:1.0.0`);

    // The build ends while keelson is down.
    await apps.patchNamespacedDeployment(
      { name: 'crash-held', namespace: NS, body: { metadata: { annotations: { [HOLD_ANNOTATION]: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // Deployments count annotation changes too (the hold's release): generations from here on.
    const generations = new Map<string, number>();
    for (const name of all) {
      const d = await read(name);
      const rolled = d.spec?.template?.spec?.containers[0]?.image === `${repo}:1.1.0`;
      generations.set(name, (d.metadata?.generation ?? 0) - (rolled ? 1 : 0));
    }
    const second = await startDaemon(daemonArgs(dir));
    await until(async () => {
      const images = await Promise.all(all.map(imageOf));
      return images.every((image) => image === `${repo}:1.1.0`);
    }, 'every workload, the held one too, at 1.1.0');
    await checks(second, repo, 3);
    for (const name of all) expect((await read(name)).metadata?.generation, `${name} patched once`).to.equal(generations.get(name)! + 1);

    // A push while keelson is down rolls once after the restart.
    expect(await second.stop('SIGKILL')).to.deep.equal({ code: null, signal: 'SIGKILL' });
    await pushImage(registry!, 'team/crash', '1.2.0', { content: 'crash 1.2.0' });
    const third = await startDaemon(daemonArgs(dir));
    await until(async () => (await Promise.all(all.map(imageOf))).every((image) => image === `${repo}:1.2.0`), 'every workload at 1.2.0');
    await checks(third, repo, 3);
    for (const name of all) expect((await read(name)).metadata?.generation, `${name} patched once more`).to.equal(generations.get(name)! + 2);

    // SIGTERM: a graceful stop, exit status 0.
    expect(await third.stop('SIGTERM')).to.deep.equal({ code: 0, signal: null });
    expect(third.logs.some((l) => l.msg === 'stopping')).to.equal(true);
    expect(patchedBeforeKill).to.be.at.least(1);
  });
});
