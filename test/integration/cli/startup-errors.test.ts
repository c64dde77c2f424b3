import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI_ENTRY, REPO_ROOT, runKeelson, type CliResult } from '../../support/cli.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';

/**
 * Runs the CLI like runKeelson, but kills it after `limitMs`: a command that wrongly keeps
 * running (a watcher left going after a startup error) fails the test instead of hanging it.
 */
function runBounded(args: readonly string[], limitMs = 20_000): Promise<CliResult & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ENTRY, ...args], {
      cwd: REPO_ROOT, env: { ...process.env, KEELSON_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr, killed });
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/** Holds a loopback port, as another program would. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** One line on stderr, starting with "keelson: ". */
function oneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(/^keelson: /);
  return lines[0]!;
}

describe('the CLI refuses bad settings before it starts anything', function () {
  this.timeout(60_000);
  let scratch: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-startup-'));
  });
  afterEach(() => rm(scratch, { recursive: true, force: true }));

  for (const [what, url, secret] of [
    ['password', 'redis://:s3cret-pa%ZZss@127.0.0.1:1/0', 's3cret-pa'],
    ['user name', 'redis://adm%E0%A4%Ain:s3cret-pass@127.0.0.1:1/0', 's3cret-pass'],
  ] as const) {
    it(`a Redis URL whose ${what} has a bad %-escape is bad input (exit 2), named without the password`, async () => {
      const result = await runKeelson(['runs', '--redis', url]);
      expect(result.status, result.stderr).to.equal(2);
      const line = oneLineError(result.stderr);
      expect(line).to.include('redis URL redis://127.0.0.1:1').and.include(`${what} has a bad %-escape`);
      expect(line).not.to.include('internal error').and.not.to.include(secret);
    });
  }

  describe('the status page port', () => {
    let repo: string;
    let marker: string;
    let held: Server | undefined;
    beforeEach(async () => {
      repo = await makeRepo({ branch: 'main' });
      await commitFile(repo, 'a.txt', 'one');
      marker = path.join(scratch, 'ran');
    });
    afterEach(async () => {
      await new Promise((resolve) => (held ? held.close(resolve) : resolve(undefined)));
      held = undefined;
      await cleanupRepos();
    });
    const watchArgs = (ui: string, ...more: string[]): string[] =>
      ['watch', `${repo}^main`, '--ui', ui, '--step', `echo ran >> ${marker}`, '--state-dir', path.join(scratch, 'state'), ...more];

    for (const port of ['http', '70000', '-1', '']) {
      it(`watch --ui ${JSON.stringify(port)} is bad input (exit 2) and runs nothing`, async () => {
        const result = await runBounded(watchArgs(port));
        expect(result.killed, 'the command kept running').to.equal(false);
        expect(result.status, result.stderr).to.equal(2);
        expect(oneLineError(result.stderr)).to.include('--ui');
        expect(await exists(marker), 'a step ran').to.equal(false);
      });
    }

    it('watch --ui with --once is bad input (exit 2)', async () => {
      const result = await runBounded(watchArgs('0', '--once'));
      expect(result.status, result.stderr).to.equal(2);
      expect(oneLineError(result.stderr)).to.include('--once');
      expect(await exists(marker)).to.equal(false);
    });

    it('watch --ui on a port in use exits 1 naming the address, before any step runs', async () => {
      const { port, server } = await holdPort();
      held = server;
      const result = await runBounded(watchArgs(String(port)));
      expect(result.killed, 'the command kept running').to.equal(false);
      expect(result.status, result.stderr).to.equal(1);
      const line = oneLineError(result.stderr);
      expect(line).to.include(`127.0.0.1:${port}`).and.include('in use').and.not.include('internal error');
      expect(await exists(marker), 'a step ran').to.equal(false);
    });

    it('daemon --port on a port in use exits 1 naming the address', async () => {
      const { port, server } = await holdPort();
      held = server;
      const result = await runBounded(['daemon', '--no-rollouts', '--port', String(port), '--host', '127.0.0.1', '--state-dir', path.join(scratch, 'daemon')]);
      expect(result.killed, 'the daemon kept running').to.equal(false);
      expect(result.status, result.stderr).to.equal(1);
      expect(oneLineError(result.stderr)).to.include(`cannot listen on 127.0.0.1:${port}: the port is in use`).and.not.include('internal error');
    });
  });
});
