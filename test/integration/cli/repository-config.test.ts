import { expect } from 'chai';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';
import { runKeelson } from '../../support/cli.js';

describe("a repository's own keelson.yaml", function () {
  this.timeout(120_000);
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-repo-config-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });

  it('with a deploy: section fails the run, saying deploy is operator-only, and runs none of its steps', async () => {
    const repo = await makeRepo({ branch: 'main' });
    const marker = path.join(scratch, 'ran');
    await commitFile(repo, 'keelson.yaml', `steps: ['touch ${marker}']\ndeploy:\n  command: [/ci.sh]\n`);
    const stateDir = path.join(scratch, 'state');
    const result = await runKeelson(['run', repo, '--state-dir', stateDir]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/failed: keelson\.yaml: line 2: deploy: is operator-only .*--config/);
    const [run] = JSON.parse((await runKeelson(['runs', '--json', '--state-dir', stateDir])).stdout) as Array<{ reason: string }>;
    expect(run!.reason).to.equal('InvalidPipeline');
    expect(await stat(marker).then(() => 'ran', () => 'not run')).to.equal('not run');
  });
});
