import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKeelson } from '../../support/cli.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';

const TOKEN = 'ghp_releaseContractToken9';

describe('keelson release against the GitHub releases contract', function () {
  this.timeout(60_000);
  let server: ContractServer;
  let dir: string;
  let tokenFile: string;
  let tarball: string;
  let sums: string;

  before(async () => {
    server = await startContractServer({ github: { tokens: { [TOKEN]: ['studio/runner'] } } });
    dir = await mkdtemp(join(tmpdir(), 'keelson-release-'));
    tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    tarball = join(dir, 'runner-linux-amd64.tar.gz');
    await writeFile(tarball, Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)));
    sums = join(dir, 'SHA256SUMS.txt');
    await writeFile(sums, 'abc  runner-linux-amd64.tar.gz\n');
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => server.resetRecords());
  afterEach(() => expect(server.violations).to.deep.equal([]));

  const release = (...args: string[]) =>
    runKeelson(['release', '--repo', 'studio/runner', '--api-url', server.githubApiUrl, ...args], { env: { GITHUB_TOKEN: '' } });

  it('creates the release once, with its assets; a second call changes nothing and says so', async () => {
    await writeFile(join(dir, 'notes.md'), '## Changes\n- faster\n');
    const first = await release('--tag', 'v1.0.0', '--token-file', tokenFile, '--asset', tarball, '--asset', sums,
      '--name', 'Runner 1.0.0', '--notes-file', join(dir, 'notes.md'), '--commit', 'main');
    expect(first.stderr).to.equal('');
    expect(first.status).to.equal(0);
    expect(first.stdout).to.equal(`${server.url}/studio/runner/releases/tag/v1.0.0\n`);
    expect(server.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).to.deep.equal([
      'GET /api/v3/repos/studio/runner/releases/tags/v1.0.0 404',
      'POST /api/v3/repos/studio/runner/releases 201',
      `POST /api/uploads/repos/studio/runner/releases/${server.releases[0]!.id}/assets 201`,
      `POST /api/uploads/repos/studio/runner/releases/${server.releases[0]!.id}/assets 201`,
    ]);
    const [created] = server.releases;
    expect(created).to.deep.include({ tag_name: 'v1.0.0', name: 'Runner 1.0.0', body: '## Changes\n- faster\n', target_commitish: 'main' });
    expect(created!.assets.map((a) => [a.name, a.content_type, a.size])).to.deep.equal([
      ['runner-linux-amd64.tar.gz', 'application/gzip', 300_000],
      ['SHA256SUMS.txt', 'text/plain', 31],
    ]);
    const expected = createHash('sha256').update(Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251))).digest('hex');
    expect(created!.assets[0]!.sha256).to.equal(expected);

    server.resetRecords();
    const second = await release('--tag', 'v1.0.0', '--token-file', tokenFile, '--asset', tarball);
    expect(second.status).to.equal(0);
    expect(second.stdout).to.equal('');
    expect(second.stderr).to.equal(`release v1.0.0 already exists: ${server.url}/studio/runner/releases/tag/v1.0.0\n`);
    expect(server.requests.map((r) => r.method)).to.deep.equal(['GET']);
    expect(server.releases).to.have.lengthOf(1);
  });

  it('takes the token from GITHUB_TOKEN when there is no --token-file', async () => {
    const result = await runKeelson(['release', '--repo', 'studio/runner', '--api-url', server.githubApiUrl, '--tag', 'v1.2.0'], { env: { GITHUB_TOKEN: TOKEN } });
    expect(result.status).to.equal(0);
  });

  const failures: readonly [string, () => string[], number, RegExp][] = [
    ['a refused token', () => ['--tag', 'v9.0.0', '--token-file', join(dir, 'wrong-token')], 1,
      /^keelson: release in studio\/runner: looking up tag v9\.0\.0: the token was refused \(HTTP 401: Bad credentials\); check --token-file\n$/],
    ['a missing asset, before any request', () => ['--tag', 'v9.0.0', '--token-file', tokenFile, '--asset', join(dir, 'absent.zip')], 2,
      /^keelson: --asset .*absent\.zip: no such file\n$/],
    ['a missing token file, before any request', () => ['--tag', 'v9.0.0', '--token-file', join(dir, 'absent-token')], 2,
      /^keelson: --token-file: cannot read token file .*absent-token: ENOENT\n$/],
    ['no token at all', () => ['--tag', 'v9.0.0'], 2, /^keelson: --token-file is required \(or set GITHUB_TOKEN\)\n$/],
    ['a malformed --repo', () => ['--repo', 'just-a-name', '--tag', 'v9.0.0', '--token-file', tokenFile], 2, /^keelson: --repo: "just-a-name" is not owner\/name\n$/],
  ];
  for (const [name, args, status, stderr] of failures) {
    it(`fails on ${name} with one line, exit ${status}`, async () => {
      await writeFile(join(dir, 'wrong-token'), 'ghp_notTheRightOne');
      const before = server.requests.length;
      const result = await release(...args());
      expect(result.stderr).to.match(stderr);
      expect(result.status).to.equal(status);
      expect(result.stderr).not.to.include(TOKEN);
      if (status === 2) expect(server.requests.length).to.equal(before);
      expect(server.releases.map((r) => r.tag_name)).not.to.include('v9.0.0');
    });
  }
});
