import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RedisStore, type RunRecord } from '../../../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT } from '../../support/cli.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { until } from '../../support/wait.js';
import { startDaemon as startServingDaemon, stopAllDaemons, type DaemonProcess } from '../daemon/daemon-process.js';

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

/** High availability: two real daemons share Redis; kill -9 of the leader mid-run. */
describe('two daemon replicas with leader election', function () {
  this.timeout(240_000);
  let redis: RunningRedis | undefined;
  let scratch: string;
  let store: RedisStore | undefined;
  const daemons: ChildProcess[] = [];

  before(async () => {
    redis = await startRedis();
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-ha-'));
    store = await RedisStore.connect({ url: redis.url });
  });
  after(async () => {
    await stopAllDaemons();
    for (const daemon of daemons) if (daemon.exitCode === null) daemon.kill('SIGKILL');
    for (const pid of await lines(path.join(scratch, 'steps'))) {
      try { process.kill(-Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    await store?.close();
    await redis?.stop();
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  function startDaemon(config: string): ChildProcess {
    const child = spawn(process.execPath, [...CLI_ENTRY, 'daemon', '--config', config, '--redis', redis!.url,
      '--leader-elect', '--lease-ttl', '2s', '--no-rollouts', '--port', '0', '--host', '127.0.0.1', '--schedule', '@every 1s'], {
      cwd: REPO_ROOT, env: { ...process.env, KEELSON_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'ignore'],
    });
    daemons.push(child);
    return child;
  }

  it('runs the pipeline on exactly one replica; a killed leader is replaced, its run interrupted and retried once', async () => {
    const repo = await makeRepo();
    const gate = path.join(scratch, 'gate');
    const owners = path.join(scratch, 'owners');
    const steps = path.join(scratch, 'steps');
    const commit = await commitFile(repo, 'a.txt', 'one');
    const config = path.join(scratch, 'keelson.yaml');
    // $PPID is the keelson process that runs the step; $$ the step's own process group.
    await writeFile(config, [
      `watches: ['${repo}^main']`,
      'steps:',
      `  - echo $PPID >> ${owners}; echo $$ >> ${steps}; while [ ! -e ${gate} ]; do sleep 0.1; done`,
      '',
    ].join('\n'));
    const first = startDaemon(config);
    const second = startDaemon(config);

    const running = await until(async () => (await store!.listRuns({ phase: 'running' }))[0], 'a run to start');
    const [leaderPid] = await until(async () => ((await lines(owners)).length > 0 ? lines(owners) : undefined), 'the step to record its keelson');
    const leader = [first, second].find((d) => d.pid === Number(leaderPid));
    const follower = [first, second].find((d) => d !== leader)!;
    expect(leader, 'the run belongs to one of the two daemons').to.not.equal(undefined);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await lines(owners), 'the follower runs nothing').to.have.length(1);

    const killedAt = Date.now();
    leader!.kill('SIGKILL');
    for (const pid of await lines(steps)) {
      try { process.kill(-Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    const retry = await until(async () =>
      (await store!.listRuns({ watch: running.watch })).find((r: RunRecord) => r.retryOf === running.id), 'the follower to take over and retry the run');
    const failoverMs = Date.parse(retry.createdAt) - killedAt;
    console.log(`      failover: the retry started ${failoverMs} ms after kill -9 of the leader (lease ttl 2s)`);
    const retryOwners = await until(async () => {
      const seen = await lines(owners);
      return seen.length >= 2 ? seen : undefined;
    }, 'the retry step to start');
    expect(retryOwners, 'the retry runs once, on the former follower').to.deep.equal([leaderPid, String(follower.pid)]);
    await writeFile(gate, '');

    const finished = await until(async () => {
      const runs = await store!.listRuns({ watch: running.watch });
      return runs.every((r) => r.phase !== 'running' && r.phase !== 'queued') ? runs : undefined;
    }, 'the retry to finish');
    expect(finished.map((r) => [r.commit, r.phase, r.reason])).to.deep.equal([
      [commit, 'succeeded', 'StepsSucceeded'],
      [commit, 'interrupted', 'ProcessDied'],
    ]);

    // A new commit is built once, by the new leader; nothing earlier is repeated.
    const next = await commitFile(repo, 'a.txt', 'two');
    await until(async () =>
      (await store!.listRuns({ watch: running.watch })).find((r) => r.commit === next && r.phase === 'succeeded'), 'the next commit to be built');
    await new Promise((r) => setTimeout(r, 2500));
    const all = await store!.listRuns({ watch: running.watch });
    expect(all.map((r) => r.commit)).to.deep.equal([next, commit, commit]);

    follower.kill('SIGTERM');
    const code = await new Promise((r) => follower.once('exit', r));
    expect(code, 'a graceful stop').to.equal(0);
  });

  it("shows the leader's watches and registry jobs on the standby replica's page and API, and its own once it leads", async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'a.txt', 'one');
    const config = path.join(scratch, 'standby.yaml');
    await writeFile(config, [`watches: ['${repo}^main']`, 'steps: [ "true" ]', "schedule: '@every 1s'", ''].join('\n'));
    const args = ['--config', config, '--redis', redis!.url, '--leader-elect', '--lease-ttl', '2s', '--no-rollouts'];
    const replicas = [await startServingDaemon(args), await startServingDaemon(args)];
    const leads = (replica: DaemonProcess): boolean => replica.logs.some((line) => line.msg === 'became leader');
    const leader = await until(async () => replicas.find(leads), 'one replica to lead');
    const standby = replicas.find((replica) => replica !== leader)!;
    const get = async (replica: DaemonProcess, path: string): Promise<Array<{ key: string; lastCheckAt?: string }>> => {
      const response = await fetch(`${replica.url}${path}`);
      expect(response.status, `${path} on ${replica.url}`).to.equal(200);
      return (await response.json()) as Array<{ key: string }>;
    };
    const watched = await until(async () => {
      const watches = await get(leader, '/api/watches');
      return watches.length > 0 ? watches : undefined;
    }, 'the leader to list its watch');
    expect((await get(standby, '/api/watches')).map((w) => w.key)).to.deep.equal(watched.map((w) => w.key));
    expect(await get(standby, '/api/registry')).to.deep.equal(await get(leader, '/api/registry'));
    const page = (await (await fetch(standby.url)).text()).replaceAll('<wbr>', '');
    expect(page).to.include(repo).and.not.include('on standby');

    // The leader goes: the standby takes over and answers from its own work.
    expect((await leader.stop('SIGTERM')).code).to.equal(0);
    await until(async () => leads(standby) || undefined, 'the standby to lead');
    await until(async () => ((await get(standby, '/api/watches')).length > 0 ? true : undefined), 'the new leader to list its watch');
    await standby.stop('SIGTERM');
  });
});
