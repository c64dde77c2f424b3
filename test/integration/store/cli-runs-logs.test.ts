import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, RedisStore, RunReason, type RunRecord } from '../../../src/store/index.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { newRun } from './contract.js';
import { CLI_ENTRY, REPO_ROOT as ROOT } from '../../support/cli.js';


interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `keelson ARGS` as a user would; streams stdout for `logs -f`. */
function keelson(args: readonly string[], onStdout?: (text: string) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ENTRY, ...args], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KEELSON_LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('keelson runs and keelson logs', function () {
  this.timeout(60_000);
  let dir: string;
  let store: FileStore;
  let older: RunRecord;
  let newer: RunRecord;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-cli-store-'));
    store = await FileStore.open({ stateDir: dir });
    older = await store.createRun(newRun({ watch: 'repo-a^main', commit: '0123456789abcdef0123456789abcdef01234567' }));
    await store.transitionRun(older.id, 'running', RunReason.Started, 'building');
    older = await store.transitionRun(older.id, 'succeeded', RunReason.StepsSucceeded, 'pushed', {
      image: { ref: '127.0.0.1:5000/team/app:main', digest: `sha256:feedface0123${'0'.repeat(52)}`, pushed: true },
    });
    await store.appendLog(older.id, 'step 1 ✓\nünïcode 😀\n');
    newer = await store.createRun(newRun({ watch: 'repo-b^dev' }));
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs --json prints the full records, newest first, each with its (here empty) trace', async () => {
    const result = await keelson(['runs', '--json', '--state-dir', dir]);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    const empty = { rollouts: [], ci: [] };
    expect(JSON.parse(result.stdout)).to.deep.equal([{ ...newer, trace: empty }, { ...older, trace: empty }]);
  });

  it('runs --json filters by --watch and cuts at --limit', async () => {
    const byWatch = await keelson(['runs', '--json', '--watch', 'repo-a^main', '--state-dir', dir]);
    expect((JSON.parse(byWatch.stdout) as RunRecord[]).map((r) => r.id)).to.deep.equal([older.id]);
    const limited = await keelson(['runs', '--json', '--limit', '1', '--state-dir', dir]);
    expect((JSON.parse(limited.stdout) as RunRecord[]).map((r) => r.id)).to.deep.equal([newer.id]);
  });

  it('runs prints a table with short commit and digest', async () => {
    const result = await keelson(['runs', '--state-dir', dir]);
    expect(result.status).to.equal(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(/^ID\s+KIND\s+WATCH\s+COMMIT\s+PHASE\s+REASON\s+STARTED\s+DURATION\s+IMAGE$/);
    expect(lines[1]).to.contain(newer.id).and.contain('queued');
    expect(lines[2]!.split(/\s+/)).to.include.members([older.id, 'build', 'repo-a^main', '0123456', 'succeeded', 'StepsSucceeded', 'feedface0123']);
  });

  it('runs --limit 0 is a usage error', async () => {
    const result = await keelson(['runs', '--limit', '0', '--state-dir', dir]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('keelson: --limit: expected a positive whole number, got "0"\n');
  });

  it('logs prints the log as it was written', async () => {
    const result = await keelson(['logs', older.id, '--state-dir', dir]);
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal('step 1 ✓\nünïcode 😀\n');
  });

  it('logs of an unknown run exits 2 naming the store', async () => {
    for (const id of ['20260101-000000-ffffff', 'Not A Run']) {
      const result = await keelson(['logs', id, '--state-dir', dir]);
      expect(result.status, id).to.equal(2);
      expect(result.stderr, id).to.match(new RegExp(`^keelson: run "${id}" not found in file:${dir}`));
      expect(result.stderr.trimEnd().split('\n'), id).to.have.length(1);
    }
  });

  it('logs -f follows until the run ends', async () => {
    const run = await store.createRun(newRun({ phase: 'running', reason: RunReason.Started }));
    await store.appendLog(run.id, 'first\n');
    let finished = false;
    const result = await keelson(['logs', '-f', run.id, '--state-dir', dir], (stdout) => {
      // Only once the follower has shown what was there, write more and end the run.
      if (!finished && stdout.includes('first\n')) {
        finished = true;
        void (async () => {
          await store.appendLog(run.id, 'second ✓\n');
          await store.transitionRun(run.id, 'succeeded', RunReason.StepsSucceeded, 'ok');
        })();
      }
    });
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal('first\nsecond ✓\n');
  });
});

describe('keelson runs and logs with --redis', function () {
  this.timeout(60_000);
  const password = `cli-pw-${randomBytes(6).toString('hex')}`;
  let redis: RunningRedis | undefined;
  let run: RunRecord;

  before(async () => {
    redis = await startRedis({ password });
    const store = await RedisStore.connect({ url: redis.url });
    run = await store.createRun(newRun());
    await store.appendLog(run.id, 'from redis\n');
    await store.close();
  });
  after(async () => {
    await redis?.stop();
  });

  it('reads runs and logs from Redis and never shows the password', async () => {
    const runs = await keelson(['runs', '--json', '--redis', redis!.url]);
    expect(runs.status).to.equal(0);
    expect((JSON.parse(runs.stdout) as RunRecord[]).map((r) => r.id)).to.deep.equal([run.id]);
    const logs = await keelson(['logs', run.id, '--redis', redis!.url]);
    expect(logs.stdout).to.equal('from redis\n');
    const missing = await keelson(['logs', '20260101-000000-eeeeee', '--redis', redis!.url]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.contain(`not found in redis://127.0.0.1:${redis!.port}/0`);
    for (const result of [runs, logs, missing]) expect(result.stdout + result.stderr).not.to.contain(password);
  });

  it('both --redis and --state-dir is a usage error', async () => {
    const result = await keelson(['runs', '--redis', redis!.url, '--state-dir', '/tmp/x']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.contain('--state-dir and --redis cannot be used together');
  });

  it('lists a corrupt run record as corrupt with a warning naming its file, and exits 0', async () => {
    const own = await mkdtemp(join(tmpdir(), 'keelson-cli-corrupt-'));
    try {
      const fine = await FileStore.open({ stateDir: own });
      const good = await fine.createRun(newRun({ watch: 'repo-a^main' }));
      const bad = await fine.createRun(newRun({ watch: 'repo-a^main' }));
      await fine.close();
      const file = join(own, 'runs', `${bad.id}.json`);
      // What a torn write of a running record would look like.
      await writeFile(file, (await readFile(file, 'utf8')).slice(0, 40));

      const table = await keelson(['runs', '--state-dir', own]);
      expect(table.status).to.equal(0);
      expect(table.stderr).to.contain(`keelson: warning: ${file}: bad run record`).and.to.contain('moved away');
      const rows = table.stdout.trimEnd().split('\n').slice(1).map((line) => line.split(/\s+/));
      expect(rows.map((row) => [row[0], row[4]])).to.deep.equal([[good.id, 'queued'], [bad.id, 'corrupt']]);

      const json = await keelson(['runs', '--json', '--state-dir', own]);
      expect(json.status).to.equal(0);
      const listed = JSON.parse(json.stdout) as Array<{ id: string; phase: string; file?: string }>;
      expect(listed.map((r) => [r.id, r.phase, r.file])).to.deep.equal([[good.id, 'queued', undefined], [bad.id, 'corrupt', file]]);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('lists a corrupt run record in Redis as corrupt instead of failing the whole list', async () => {
    const prefix = `corrupt-${randomBytes(4).toString('hex')}:`;
    const writer = await RedisStore.connect({ url: redis!.url, keyPrefix: prefix });
    try {
      const good = await writer.createRun(newRun({ watch: 'repo-a^main' }));
      const bad = await writer.createRun(newRun({ watch: 'repo-a^main' }));
      const raw = new Redis(redis!.url);
      await raw.set(`${prefix}run:${bad.id}`, '{"id":');
      raw.disconnect();
      expect((await writer.listRuns()).map((r) => r.id)).to.deep.equal([good.id]);
      expect(await writer.corruptRuns()).to.deep.equal([{
        id: bad.id, where: `${writer.description} key ${prefix}run:${bad.id}`, problem: (await writer.corruptRuns())[0]!.problem,
      }]);
      expect((await writer.corruptRuns())[0]!.problem).to.match(/^bad run record: not JSON/);
    } finally {
      await writer.close();
    }
  });
});
