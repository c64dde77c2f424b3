import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runImage } from '../../../src/deploy/index.js';
import { RegistryClient } from '../../../src/registry/index.js';
import type { RunRecord } from '../../../src/store/index.js';
import { runKeelson } from '../../support/cli.js';
import { cleanupRepos, git, makeRepo } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/** `keelson run PATH --registry HOST:PORT --image NAME` end to end. */
describe('keelson run builds a checkout with buildah and pushes it', function () {
  this.timeout(300_000);
  let registry: RunningRegistry | undefined;
  let dir: string | undefined;
  let client: RegistryClient | undefined;
  let repo: string;
  let commit: string;
  const env = (): NodeJS.ProcessEnv => buildahInvocation().env;

  before(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'keelson-local-build-'));
    client = new RegistryClient();
    repo = await makeRepo();
    const base = baseImageDir();
    await copyFile(join(base, 'busybox'), join(repo, 'busybox'));
    const containerfile = await readFile(join(base, 'Containerfile'), 'utf8');
    await writeFile(join(repo, 'Dockerfile'), `${containerfile}COPY message.txt /message.txt\n`);
    await writeFile(join(repo, 'message.txt'), 'committed message');
    await git(repo, 'add', '--', '.');
    await git(repo, 'commit', '--quiet', '-m', 'an image');
    commit = await git(repo, 'rev-parse', 'HEAD');
    // Never committed: the build must not see it.
    await writeFile(join(repo, 'message.txt'), 'dirty work tree');
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    await cleanupRepos();
  });

  async function runs(stateDir: string): Promise<RunRecord[]> {
    const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
    expect(listed.status, listed.stderr).to.equal(0);
    return JSON.parse(listed.stdout) as RunRecord[];
  }

  it('pushes the committed HEAD, and keelson runs --json shows the digest the registry has', async () => {
    const stateDir = join(dir!, 'pushed');
    const result = await runKeelson(['run', repo, '--registry', registry!.host, '--image', 'build/app', '--state-dir', stateDir], { env: env() });
    expect(result.status, result.stderr + result.stdout).to.equal(0);

    const [run, ...others] = await runs(stateDir);
    expect(others).to.deep.equal([]);
    expect(run).to.include({ kind: 'build', phase: 'succeeded', commit, branch: 'main' });
    expect(run!.image?.pushed).to.equal(true);
    expect(run!.image?.digest).to.match(/^sha256:[a-f0-9]{64}$/);
    const repository = `${registry!.host}/build/app`;
    expect(await client!.manifestDigest(repository, 'main')).to.equal(run!.image!.digest);
    expect(await client!.manifestDigest(repository, commit.slice(0, 12))).to.equal(run!.image!.digest);

    // What was pushed is the committed tree, not the dirty work tree.
    let output = '';
    const ran = await runImage({
      image: `${repository}@${run!.image!.digest}`, command: ['/bin/busybox', 'cat', '/message.txt'], name: `keelson-check-${run!.id}`,
      insecure: true, env: env(), log: (text) => (output += text), signal: new AbortController().signal,
    });
    expect(ran).to.deep.equal({ ok: true });
    expect(output).to.include('committed message').and.not.include('dirty work tree');
  });

  it('a RUN step with no OCI runtime installed fails with a message that names the fix', async () => {
    const stateDir = join(dir!, 'no-runtime');
    // buildah's default isolation, with runc out of sight (/usr/sbin hidden in a mount namespace of
    // its own): what a machine gets from `apt-get install --no-install-recommends buildah`.
    const { BUILDAH_ISOLATION: _chroot, ...withoutChroot } = env();
    // A RUN step of its own, so no cached layer stands in for running it.
    const own = await makeRepo();
    await copyFile(join(baseImageDir(), 'busybox'), join(own, 'busybox'));
    await writeFile(join(own, 'Dockerfile'), `FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "echo", "${stateDir}"]\n`);
    await git(own, 'add', '--', '.');
    await git(own, 'commit', '--quiet', '-m', 'a RUN step');
    const result = await runKeelson(['run', own, '--image', 'build/app', '--state-dir', stateDir], {
      env: withoutChroot,
      prefix: ['unshare', '--mount', '--', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/sbin && exec "$@"', 'sh'],
    });
    expect(result.status, result.stderr).to.equal(1);
    const [run] = await runs(stateDir);
    expect(run).to.include({ phase: 'failed', reason: 'BuildFailed' });
    expect(run!.message).to.equal('buildah build exited with 1: buildah found no OCI runtime for a RUN step ("exec: no command"): '
      + "install runc (apt-get install runc), or set BUILDAH_ISOLATION=chroot in keelson's environment");
  });

  it('without --registry the image stays in local storage and the run says so', async () => {
    const stateDir = join(dir!, 'local');
    const result = await runKeelson(['run', repo, '--image', 'build/local', '--state-dir', stateDir], { env: env() });
    expect(result.status, result.stderr + result.stdout).to.equal(0);
    expect(result.stdout).to.include('no registry configured; localhost/build/local:main stays in local buildah storage');

    const [run] = await runs(stateDir);
    expect(run).to.include({ kind: 'build', phase: 'succeeded', commit });
    expect(run!.image).to.deep.equal({ ref: 'localhost/build/local:main', pushed: false });
    expect(run!.message).to.include('not pushed');
  });
});
