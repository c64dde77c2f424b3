import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processGroupMembers } from '../../../src/proc/index.js';
import type { RunRecord } from '../../../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT, runKeelson } from '../../support/cli.js';
import { cleanupRepos, commitFile, git, makeRepo } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';
import { until } from '../../support/wait.js';

/**
 * kill -9 of the real `keelson watch` (local executor) at each phase of a run, three timings
 * each, then a restart: every commit's work is done exactly once, no process of the run
 * survives, no scratch or auth file is left, and every commit is in the run history.
 */

interface Rig {
  readonly dir: string;
  readonly repo: string;
  readonly state: string;
  /** keelson's TMPDIR: where its push scratch dirs go */
  readonly tmp: string;
  /** Lines appended by the pipeline's step at its very end: one per completed step. */
  readonly done: string;
  /** Lines appended by the step when it begins. */
  readonly starts: string;
  readonly config: string;
  readonly env: NodeJS.ProcessEnv;
}

interface RigOptions {
  readonly step?: boolean;
  readonly image?: boolean;
  /** Seconds the image build's RUN sleeps */
  readonly buildSleep?: number;
  readonly deploy?: readonly string[];
  readonly webhook?: string;
}

describe('exactly once through kill -9 (keelson watch, local executor)', function () {
  this.timeout(600_000);
  let registry: RunningRegistry | undefined;
  const rigs: Rig[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    registry = await startRegistry({ auth: true });
  });
  after(async () => {
    await registry?.stop();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await killHard(child);
    for (const rig of rigs.splice(0)) await rm(rig.dir, { recursive: true, force: true });
    await cleanupRepos();
  });

  async function makeRig(options: RigOptions): Promise<Rig> {
    const dir = await mkdtemp(join(tmpdir(), 'keelson-kill9-'));
    const rig: Rig = {
      dir, repo: await makeRepo(), state: join(dir, 'state'), tmp: join(dir, 'tmp'), done: join(dir, 'done'), starts: join(dir, 'starts'),
      config: join(dir, 'keelson.yaml'),
      env: { ...buildahInvocation().env, TMPDIR: join(dir, 'tmp'), KEELSON_LOG_LEVEL: 'silent' },
    };
    rigs.push(rig);
    await mkdir(rig.tmp);
    if (options.image) {
      const base = baseImageDir();
      await copyFile(join(base, 'busybox'), join(rig.repo, 'busybox'));
      const containerfile = await readFile(join(base, 'Containerfile'), 'utf8');
      // id.txt changes with every commit, so no layer comes from the cache of an earlier build.
      const sleep = options.buildSleep ? `RUN ["/bin/busybox", "sleep", "${options.buildSleep}"]\n` : '';
      await writeFile(join(rig.repo, 'Dockerfile'), `${containerfile}COPY id.txt /id.txt\n${sleep}`);
      await git(rig.repo, 'add', '--', 'busybox', 'Dockerfile');
    }
    await writeFile(join(dir, 'registry-password'), registry!.password!);
    await writeFile(join(dir, 'registry.yaml'), [
      `'${registry!.host}':`,
      "  '.*':",
      '    security:',
      '      tls: { client: { disabled: true } }',
      `      basic: { username: ${registry!.username}, password_file: ${join(dir, 'registry-password')} }`,
      '',
    ].join('\n'));
    const step = `echo "$KEELSON_COMMIT" >> ${rig.starts}; sleep 2; echo "$KEELSON_COMMIT" >> ${rig.done}`;
    await writeFile(rig.config, [
      `steps: ${JSON.stringify(options.step ? [step] : [])}`,
      ...(options.image ? ['build:', '  image: faults/app', "  tags: ['{{branch}}', '{{shortCommit}}']"] : []),
      ...(options.deploy ? ['deploy:', `  command: ${JSON.stringify(options.deploy)}`] : []),
      ...(options.webhook ? ['report:', '  notifications:', `    - { type: webhook, url: '${options.webhook}', events: [run.finished], timeout: 60s }`] : []),
      `registry: '${registry!.host}'`,
      'registryConfig: registry.yaml',
      `stateDir: ${rig.state}`,
      '',
    ].join('\n'));
    return rig;
  }

  async function commit(rig: Rig): Promise<string> {
    return commitFile(rig.repo, 'id.txt', randomBytes(8).toString('hex'));
  }

  function startWatch(rig: Rig): ChildProcess {
    const child = spawn(process.execPath, [...CLI_ENTRY, 'watch', `${rig.repo}^main`, '--config', rig.config, '--schedule', '@every 1s'], {
      cwd: REPO_ROOT, env: rig.env, stdio: 'ignore',
    });
    children.push(child);
    return child;
  }

  async function restartOnce(rig: Rig): Promise<void> {
    const result = await runKeelson(['watch', `${rig.repo}^main`, '--once', '--config', rig.config], { env: { ...rig.env, KEELSON_LOG_LEVEL: process.env.FAULT_LOG ?? 'silent' } });
    if (process.env.FAULT_LOG) console.log(result.stderr, result.stdout);
    expect(result.status, result.stderr).to.equal(0);
  }

  /** The records as they are on disk, also while a watcher writes them. */
  function recordsNow(rig: Rig): RunRecord[] {
    const dir = join(rig.state, 'runs');
    const out: RunRecord[] = [];
    for (const name of safeReaddir(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as RunRecord);
      } catch {
        // mid-write
      }
    }
    return out;
  }

  function logOf(rig: Rig, id: string): string {
    try {
      return readFileSync(join(rig.state, 'logs', `${id}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  async function runs(rig: Rig): Promise<RunRecord[]> {
    const listed = await runKeelson(['runs', '--json', '--limit', '1000', '--state-dir', rig.state]);
    expect(listed.status, listed.stderr).to.equal(0);
    return JSON.parse(listed.stdout) as RunRecord[];
  }

  /** What must hold after every restart, whatever the phase. */
  async function expectClean(rig: Rig): Promise<RunRecord[]> {
    const all = await runs(rig);
    for (const run of all) {
      for (const group of run.processes ?? []) {
        expect(processGroupMembers(group), `process group ${group.pid} (${group.command}) of run ${run.id}`).to.deep.equal([]);
      }
    }
    const ids = new Set(all.map((run) => run.id));
    expect(processesWithRunId(ids), 'processes carrying a run id of this state dir').to.deep.equal([]);
    const { env, globalArgs } = buildahInvocation();
    const containers = execFileSync('buildah', [...globalArgs, 'containers', '--format', '{{.ContainerName}}'], { env }).toString().split('\n');
    expect(containers.filter((name) => [...ids].some((id) => name === `keelson-deploy-${id}`)), 'working containers of deploy runs').to.deep.equal([]);
    expect((await readdir(rig.tmp)).filter((name) => name.startsWith('keelson-')), 'scratch dirs').to.deep.equal([]);
    expect(safeReaddir(join(rig.state, 'auth')), 'auth files').to.deep.equal([]);
    expect(safeReaddir(join(rig.state, 'workspaces')), 'workspaces').to.deep.equal([]);
    expect(safeReaddir(rig.state), 'the lock was given back').to.not.include('owner.lock');
    for (const commit of (await git(rig.repo, 'rev-list', 'HEAD')).split('\n')) {
      const builds = all.filter((run) => run.kind === 'build' && run.commit === commit);
      expect(builds.map((run) => run.phase), `history of ${commit.slice(0, 7)}`).to.not.deep.equal([]);
      const ended = builds.filter((run) => run.phase === 'succeeded' || run.phase === 'failed');
      expect(ended.length, `runs of ${commit.slice(0, 7)} that ended`).to.be.at.most(1);
    }
    return all;
  }

  /** The runs of one commit, oldest first, as [phase, reason, retry?] */
  function historyOf(all: readonly RunRecord[], commit: string, kind = 'build'): Array<[string, string, boolean]> {
    return all.filter((run) => run.kind === kind && run.commit === commit).reverse().map((run) => [run.phase, run.reason, run.retryOf !== undefined]);
  }

  for (const delayMs of [0, 400, 1200]) {
    it(`during a step (${delayMs} ms in): the step's process group is ended, the run retried once, commits made meanwhile recorded as skipped`, async () => {
      const rig = await makeRig({ step: true });
      const first = await commit(rig);
      const child = startWatch(rig);
      await until(async () => (await lines(rig.starts)).includes(first), 'the step to begin');
      await sleep(delayMs);
      await killHard(child);
      const second = await commit(rig);
      const third = await commit(rig);

      await restartOnce(rig);
      // An orphaned step would have finished its sleep by now and written a second line.
      expect(count(await lines(rig.done), first), 'the first commit\'s step completed once').to.equal(1);
      expect(count(await lines(rig.done), second)).to.equal(0);
      expect(count(await lines(rig.done), third)).to.equal(1);
      const all = await expectClean(rig);
      expect(historyOf(all, first)).to.deep.equal([['interrupted', 'ProcessDied', false], ['succeeded', 'StepsSucceeded', true]]);
      expect(historyOf(all, second)).to.deep.equal([['skipped', 'Coalesced', false]]);
      expect(historyOf(all, third)).to.deep.equal([['succeeded', 'StepsSucceeded', false]]);
    });
  }

  for (const delayMs of [0, 700, 1800]) {
    it(`during a buildah build (${delayMs} ms in): buildah is ended, the build retried once and pushed`, async () => {
      const rig = await makeRig({ image: true, buildSleep: 3 });
      const first = await commit(rig);
      const child = startWatch(rig);
      await until(async () => recordsNow(rig).some((run) => logOf(rig, run.id).includes('keelson: building')), 'the build to begin', 120_000);
      await sleep(delayMs);
      await killHard(child);
      const second = await commit(rig);

      await restartOnce(rig);
      const all = await expectClean(rig);
      expect(historyOf(all, first)).to.deep.equal([['interrupted', 'ProcessDied', false], ['succeeded', 'StepsSucceeded', true]]);
      expect(historyOf(all, second)).to.deep.equal([['succeeded', 'StepsSucceeded', false]]);
    });
  }

  for (const delayMs of [0, 30, 100]) {
    it(`during a push to a real registry (${delayMs} ms in): the push is ended, the run retried once and the registry has its digest`, async () => {
      const rig = await makeRig({ image: true });
      const first = await commit(rig);
      const child = startWatch(rig);
      await until(async () => recordsNow(rig).some((run) => logOf(rig, run.id).includes('keelson: pushing')), 'the push to begin', 120_000);
      await sleep(delayMs);
      await killHard(child);
      // A small image's push can end before the kill lands: then the run is simply done.
      const endedFirst = recordsNow(rig).some((run) => run.commit === first && run.phase === 'succeeded');

      await restartOnce(rig);
      const all = await expectClean(rig);
      expect(historyOf(all, first)).to.deep.equal(endedFirst
        ? [['succeeded', 'StepsSucceeded', false]]
        : [['interrupted', 'ProcessDied', false], ['succeeded', 'StepsSucceeded', true]]);
      const built = all.find((run) => run.commit === first && run.phase === 'succeeded')!;
      const head = await fetch(`${registry!.url}/v2/faults/app/manifests/${first.slice(0, 12)}`, {
        method: 'HEAD',
        headers: {
          authorization: `Basic ${Buffer.from(`${registry!.username}:${registry!.password}`).toString('base64')}`,
          accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      });
      expect(head.headers.get('docker-content-digest')).to.equal(built.image?.digest);
    });
  }

  for (const delayMs of [0, 500, 1300]) {
    it(`during a deploy run (${delayMs} ms in): the image's command is ended and the deploy retried once`, async () => {
      const rig = await makeRig({ image: true, deploy: ['/bin/busybox', 'sleep', '2'] });
      const first = await commit(rig);
      const child = startWatch(rig);
      // Both buildah commands of the deploy are recorded: `from` is done, `run` is going.
      const deploy = await until(async () => recordsNow(rig).find((run) => run.kind === 'deploy' && run.phase === 'running' && (run.processes?.length ?? 0) >= 2),
        'the deploy command to run', 120_000);
      await sleep(delayMs);
      await killHard(child);

      const again = startWatch(rig);
      await until(async () => recordsNow(rig).find((run) => run.kind === 'deploy' && run.retryOf === deploy.id && run.phase === 'succeeded'),
        'the deploy to be retried', 120_000);
      await stopGracefully(again);
      const all = await expectClean(rig);
      expect(historyOf(all, first)).to.deep.equal([['succeeded', 'StepsSucceeded', false]]);
      expect(historyOf(all, first, 'deploy')).to.deep.equal([['interrupted', 'ProcessDied', false], ['succeeded', 'StepsSucceeded', true]]);
    });
  }

  for (const delayMs of [0, 200, 600]) {
    it(`between a run's end and the watch state update (${delayMs} ms in): the finished commit is not run again`, async () => {
      const receiver = await startReceiver();
      try {
        const rig = await makeRig({ step: true, webhook: receiver.url });
        const first = await commit(rig);
        const child = startWatch(rig);
        // The run is recorded as finished, and keelson waits for this notification before it
        // writes the watch state.
        await receiver.firstRequest;
        expect(recordsNow(rig).find((run) => run.commit === first)?.phase).to.equal('succeeded');
        await sleep(delayMs);
        await killHard(child);
        receiver.answerAll();

        await restartOnce(rig);
        expect(count(await lines(rig.done), first)).to.equal(1);
        const all = await expectClean(rig);
        expect(historyOf(all, first)).to.deep.equal([['succeeded', 'StepsSucceeded', false]]);
      } finally {
        await receiver.close();
      }
    });
  }
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

function count(list: readonly string[], value: string): number {
  return list.filter((item) => item === value).length;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Pids of processes whose environment names one of these runs (steps get KEELSON_RUN_ID). */
function processesWithRunId(ids: ReadonlySet<string>): number[] {
  const found: number[] = [];
  for (const name of safeReaddir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'utf8');
    } catch {
      continue;
    }
    const id = /(?:^|\0)KEELSON_RUN_ID=([^\0]*)/.exec(environ)?.[1];
    if (id !== undefined && ids.has(id)) found.push(Number(name));
  }
  return found;
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function stopGracefully(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Receiver {
  readonly url: string;
  /** Resolves when the first notification arrives; it is held unanswered. */
  readonly firstRequest: Promise<void>;
  /** From now on, answer every notification at once. */
  answerAll(): void;
  close(): Promise<void>;
}

/** A webhook receiver that holds the first notification, so keelson waits on it. */
async function startReceiver(): Promise<Receiver> {
  let answering = false;
  let arrived!: () => void;
  const firstRequest = new Promise<void>((resolve) => { arrived = resolve; });
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    if (answering) {
      response.end('ok');
      return;
    }
    arrived();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    firstRequest,
    answerAll: () => {
      answering = true;
      server.closeAllConnections();
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
