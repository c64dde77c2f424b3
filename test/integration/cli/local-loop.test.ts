import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { RunRecord } from '../../../src/store/index.js';
import { runKeelson } from '../../support/cli.js';
import { cleanupRepos, commitFile, git, makeRepo } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/**
 * The local loop closes, through the command line on a laptop with no cluster:
 * commit → build → push → new digest seen → the image's own test command, each a run.
 */
describe('keelson watch --once closes the local loop', function () {
  this.timeout(300_000);
  let registry: RunningRegistry | undefined;
  let dir: string;
  let repo: string;

  before(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'keelson-cli-loop-'));
    repo = await makeRepo();
    const base = baseImageDir();
    await copyFile(join(base, 'busybox'), join(repo, 'busybox'));
    const containerfile = await readFile(join(base, 'Containerfile'), 'utf8');
    await writeFile(join(repo, 'Dockerfile'), `${containerfile}COPY ci.sh /ci.sh\n`);
    await writeFile(join(repo, 'ci.sh'), '#!/bin/busybox sh\necho "testing $KEELSON_COMMIT in the image"\n');
    await git(repo, 'update-index', '--add', '--chmod=+x', '--', 'ci.sh');
    await git(repo, 'add', '--', '.');
    await git(repo, 'commit', '--quiet', '-m', 'an image with a test');
    await writeFile(join(dir, 'keelson.yaml'), [
      'steps: ["test -f ci.sh"]',
      'build:',
      '  image: team/app',
      "  tags: ['{{branch}}', '{{shortCommit}}']",
      'deploy:',
      '  command: ["/bin/busybox", "sh", "/ci.sh"]',
      `registry: ${registry.host}`,
      `stateDir: ${join(dir, 'state')}`,
      '',
    ].join('\n'));
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
    await cleanupRepos();
  });

  async function runs(): Promise<RunRecord[]> {
    const listed = await runKeelson(['runs', '--json', '--state-dir', join(dir, 'state')]);
    expect(listed.status, listed.stderr).to.equal(0);
    return JSON.parse(listed.stdout) as RunRecord[];
  }

  it('builds, pushes, sees the new digest and runs the image, for each new commit', async () => {
    const env = buildahInvocation().env;
    const first = await git(repo, 'rev-parse', 'HEAD');
    const once = await runKeelson(['watch', `${repo}^main`, '--once', '--config', join(dir, 'keelson.yaml')], { env });
    expect(once.status, once.stderr).to.equal(0);
    let [deploy, build, ...rest] = await runs();
    expect(rest).to.deep.equal([]);
    expect(build).to.include({ kind: 'build', phase: 'succeeded', commit: first });
    expect(build!.image?.digest).to.match(/^sha256:/);
    expect(deploy).to.include({ kind: 'deploy', phase: 'succeeded', commit: first });
    expect(deploy!.image?.digest).to.equal(build!.image?.digest);
    const log = await runKeelson(['logs', deploy!.id, '--state-dir', join(dir, 'state')]);
    expect(log.stdout).to.contain(`testing ${first} in the image`);

    const second = await commitFile(repo, 'ci.sh', '#!/bin/busybox sh\necho "second $KEELSON_COMMIT"; exit 4\n');
    const again = await runKeelson(['watch', `${repo}^main`, '--once', '--config', join(dir, 'keelson.yaml')], { env });
    expect(again.status, 'the image test failed').to.equal(1);
    [deploy, build] = await runs();
    expect(build).to.include({ kind: 'build', phase: 'succeeded', commit: second });
    expect(deploy).to.include({ kind: 'deploy', phase: 'failed', commit: second, exitCode: 4 });
  });
});
