import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runKeelson } from '../../support/cli.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';
import { cleanupRepos, commitFile, makeRepo } from '../../support/git.js';

const TOKEN = 'ghp_cliStatusToken000000001';

/** A watched commit gets pending, then success/failure, with a link to its run. */
describe('keelson watch posts commit statuses', function () {
  this.timeout(120_000);
  let server: ContractServer;
  let scratch: string;

  before(async () => {
    server = await startContractServer({ github: { tokens: { [TOKEN]: ['org/app'] } } });
    scratch = await mkdtemp(path.join(tmpdir(), 'keelson-cli-status-'));
  });
  after(async () => {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
    await cleanupRepos();
  });
  beforeEach(() => server.resetRecords());
  afterEach(() => expect(server.violations).to.deep.equal([]));

  async function config(step: string): Promise<string> {
    await writeFile(path.join(scratch, 'token'), `${TOKEN}\n`);
    const file = path.join(scratch, 'keelson.yaml');
    await writeFile(file, [
      `steps: [${JSON.stringify(step)}]`,
      `stateDir: ${path.join(scratch, 'state')}`,
      'publicUrl: https://keelson.example.test',
      'report:',
      '  statuses:',
      `    - { provider: github, apiUrl: ${server.githubApiUrl}, repository: org/app, tokenFile: token }`,
      '',
    ].join('\n'));
    return file;
  }

  it('posts pending then success, linking the run page, and never logs the token', async () => {
    const repo = await makeRepo();
    const commit = await commitFile(repo, 'a.txt', 'one');
    const result = await runKeelson(['watch', repo, '--once', '--config', await config('true')], { env: { KEELSON_LOG_LEVEL: 'info' } });
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr).to.not.contain(TOKEN);
    const statuses = server.githubStatuses.get('org/app')?.get(commit) ?? [];
    expect(statuses.map((s) => s.state)).to.deep.equal(['pending', 'success']);
    expect(statuses[1]!.target_url).to.match(/^https:\/\/keelson\.example\.test\/runs\/\d{8}-\d{6}-[a-f0-9]{6}$/);
  });

  it('a status that cannot be posted is recorded, and never fails the run', async () => {
    const repo = await makeRepo();
    // Content of its own: the same tree committed within the same second is the same commit id
    // as another test's, whose statuses the server keeps.
    const commit = await commitFile(repo, 'a.txt', 'a status that cannot be posted');
    server.failNext(50, { status: 502 });
    const result = await runKeelson(['watch', repo, '--once', '--config', await config('exit 0')]);
    expect(result.status, result.stderr).to.equal(0);
    expect(server.githubStatuses.get('org/app')?.get(commit) ?? []).to.deep.equal([]);
    const runs = JSON.parse((await runKeelson(['runs', '--json', '--state-dir', path.join(scratch, 'state')])).stdout) as Array<{ id: string; commit: string; phase: string }>;
    const run = runs.find((r) => r.commit === commit)!;
    expect(run.phase).to.equal('succeeded');
    const log = await runKeelson(['logs', run.id, '--state-dir', path.join(scratch, 'state')]);
    expect(log.stdout).to.match(/github.*(502|could not|failed)/i);
  });

  it('a failing run posts failure', async () => {
    const repo = await makeRepo();
    const commit = await commitFile(repo, 'a.txt', 'a failing run');
    const result = await runKeelson(['watch', repo, '--once', '--config', await config('exit 5')]);
    expect(result.status).to.equal(1);
    expect((server.githubStatuses.get('org/app')?.get(commit) ?? []).map((s) => s.state)).to.deep.equal(['pending', 'failure']);
  });
});
