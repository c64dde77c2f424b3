import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, utimes } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../support/cli.js';

const run = promisify(execFile);

interface Shell {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function sh(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Shell> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

/** The first ```sh block after `heading` in a README. */
function shellBlockAfter(readme: string, heading: string): string {
  const at = readme.indexOf(heading);
  expect(at, heading).to.be.greaterThan(-1);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  return block![1]!;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('the README set-up, as a new user runs it', function () {
  this.timeout(600_000);
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-setup-'));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it("on a fresh clone, the first command installs `keelson` on PATH and runs; keelson then works from any directory", async () => {
    const clone = path.join(scratch, 'keelson');
    await run('git', ['clone', '--quiet', REPO_ROOT, clone]);
    // npm ci is npm's business (and a download): the clone borrows this checkout's packages.
    // The lock file is made older than them, so install-deps.sh does not run npm ci over the link.
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules'));
    await utimes(path.join(clone, 'package-lock.json'), new Date(0), new Date(0));
    const prefix = path.join(scratch, 'prefix');
    const home = path.join(scratch, 'home');
    const elsewhere = path.join(scratch, 'elsewhere');
    await mkdir(home);
    await mkdir(elsewhere);
    // npm's global prefix and HOME in the scratch dir: the test leaves the machine as it was.
    // npx/npm run hand their own npm_config_* (prefix included) to the test; a new user has none.
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    Object.assign(env, { HOME: home, NPM_CONFIG_PREFIX: prefix, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, CI: '1', KEELSON_LOG_LEVEL: 'warn' });
    delete env.XDG_STATE_HOME; // the state dir is the default one, under HOME

    const first = shellBlockAfter(await readFile(path.join(clone, 'README.md'), 'utf8'), '## Set up');
    expect(first).to.match(/^bash scripts\/install-deps\.sh && keelson watch /);
    const installed = await sh(first, clone, env);
    expect(installed.status, installed.stderr).to.equal(0);
    expect((await stat(path.join(prefix, 'bin', 'keelson'))).isFile()).to.equal(true);

    const again = await sh(first, clone, env);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/nothing new/);

    const listed = await sh('command -v keelson && keelson runs -o name && keelson logs latest', elsewhere, env);
    expect(listed.status, listed.stderr).to.equal(0);
    const [where, id, ...log] = listed.stdout.trim().split('\n');
    expect(where).to.equal(path.join(prefix, 'bin', 'keelson'));
    expect(id).to.match(/^\d{8}-\d{6}-[0-9a-f]+$/);
    expect(log.join('\n'), 'the step ran on the committed README').to.contain('head -3 README.md').and.contain('# keelson');
  });

  it('local-registry.sh starts a plain loopback registry that takes pushes without a login, and stops with the printed command', async () => {
    const addr = `127.0.0.1:${await freePort()}`;
    const dir = path.join(scratch, 'registry');
    const started = await sh(`bash scripts/local-registry.sh ${addr} ${dir}`, REPO_ROOT, process.env);
    const pid = Number(await readFile(path.join(dir, 'registry.pid'), 'utf8').catch(() => '0'));
    try {
      expect(started.status, started.stderr).to.equal(0);
      expect(started.stdout).to.contain(`listening on ${addr}`);
      const base = await fetch(`http://${addr}/v2/`);
      expect(base.status).to.equal(200);
      const upload = await fetch(`http://${addr}/v2/team/app/blobs/uploads/`, { method: 'POST' });
      expect(upload.status, 'no htpasswd: a push may start').to.equal(202);
      const refused = await sh(`bash scripts/local-registry.sh 0.0.0.0:5000 ${dir}`, REPO_ROOT, process.env);
      expect(refused.status).to.equal(2);
    } finally {
      const stop = /stop: (kill .*)\)$/m.exec(started.stdout)?.[1];
      await sh(stop ?? `kill ${pid}`, REPO_ROOT, process.env);
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(() => process.kill(pid, 0), 'the registry is gone').to.throw();
  });
});
