import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStore } from '../../../src/store/index.js';
import { cleanupRepos, commitFile, fileUrl, makeRepo } from '../../support/git.js';
import { runKeelson } from '../../support/cli.js';

interface RunJson {
  readonly id: string;
  readonly watch: string;
  readonly commit: string;
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

describe('one repository, one watch identity, whatever the spelling', function () {
  this.timeout(180_000);
  let scratch: string;
  let repo: string;
  let stateDir: string;

  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-identity-'));
    stateDir = path.join(scratch, 'state');
    repo = await makeRepo({ branch: 'main' });
  });
  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('run, then watch . and watch file://…/ build a commit once, and runs/logs --watch find it under any spelling', async () => {
    const marker = path.join(scratch, 'ran');
    const commit = await commitFile(repo, 'a.txt', 'one');
    const step = `echo "$KEELSON_COMMIT" >> ${marker}`;
    const ran = await runKeelson(['run', '--step', step, '--state-dir', stateDir], { cwd: repo });
    expect(ran.status, ran.stderr).to.equal(0);

    for (const spelling of ['.', `${fileUrl(repo)}/`, './^HEAD']) {
      const watched = await runKeelson(['watch', spelling, '--once', '--step', step, '--state-dir', stateDir], { cwd: repo });
      expect(watched.status, watched.stderr).to.equal(0);
      expect(watched.stderr, spelling).to.match(/: nothing new \(last built [0-9a-f]{7}\)\n$/);
    }
    expect(await lines(marker), 'built once').to.deep.equal([commit]);

    for (const spelling of ['.', './', `${fileUrl(repo)}^main`, '.^HEAD', repo]) {
      const listed = await runKeelson(['runs', '--json', '--watch', spelling, '--state-dir', stateDir], { cwd: repo });
      const found = JSON.parse(listed.stdout) as RunJson[];
      expect(found.map((r) => [r.watch, r.commit]), spelling).to.deep.equal([[`${repo}^main`, commit]]);
    }
    const log = await runKeelson(['logs', 'latest', '--watch', `${repo}/`, '--state-dir', stateDir]);
    expect(log.status, log.stderr).to.equal(0);
    expect(log.stdout).to.contain(`>> ${marker}`);
  });

  it('takes over the state an older version recorded under ^HEAD, and still lists those runs', async () => {
    const marker = path.join(scratch, 'ran');
    const commit = await commitFile(repo, 'a.txt', 'one');
    const store = await FileStore.open({ stateDir });
    await store.setState(`watch:${repo}^HEAD`, { commit, branch: 'main', ok: true, at: new Date().toISOString() });
    await store.createRun({
      id: '20250101-000000-abcdef' as never, kind: 'build', watch: `${repo}^HEAD`, repo, branch: 'main', commit,
      phase: 'queued', reason: 'Queued', message: 'from an older version',
    });
    await store.close();

    const watched = await runKeelson(['watch', repo, '--once', '--step', `echo x >> ${marker}`, '--state-dir', stateDir]);
    expect(watched.status, watched.stderr).to.equal(0);
    expect(watched.stderr).to.contain('nothing new');
    expect(await lines(marker), 'not built again').to.deep.equal([]);
    const listed = await runKeelson(['runs', '-o', 'name', '--watch', `${repo}^main`, '--state-dir', stateDir]);
    expect(listed.stdout).to.equal('20250101-000000-abcdef\n');
  });

  it('takes over the state an older version recorded under the file:// URL of the repository', async () => {
    const marker = path.join(scratch, 'ran');
    const commit = await commitFile(repo, 'a.txt', 'one');
    const store = await FileStore.open({ stateDir });
    await store.setState(`watch:${fileUrl(repo)}^main`, { commit, branch: 'main', ok: true, at: new Date().toISOString() });
    await store.close();
    const watched = await runKeelson(['watch', fileUrl(repo), '--once', '--step', `echo x >> ${marker}`, '--state-dir', stateDir]);
    expect(watched.status, watched.stderr).to.equal(0);
    expect(watched.stderr).to.contain('nothing new');
    expect(await lines(marker), 'not built again').to.deep.equal([]);
  });
});
