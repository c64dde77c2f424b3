import { expect } from 'chai';
import { Duration } from '../../../src/domain/index.js';
import { GitHubReleases, ReleaseError } from '../../../src/release/index.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';

const TOKEN = 'ghp_releaseLibraryToken77';

describe('GitHubReleases against the GitHub releases contract', function () {
  this.timeout(30_000);
  let server: ContractServer;
  let releases: GitHubReleases;

  before(async () => {
    server = await startContractServer({ github: { tokens: { [TOKEN]: ['studio/runner'] } } });
    releases = new GitHubReleases({ token: TOKEN, apiUrl: server.githubApiUrl, retry: { retryDelay: Duration.ofMilliseconds(5) } });
  });
  after(async () => {
    await releases?.close();
    await server?.stop();
  });
  beforeEach(() => server.resetRecords());
  afterEach(() => expect(server.violations).to.deep.equal([]));

  it('rides out 502s and a 429 with Retry-After', async () => {
    server.failNext(2, { status: 502 });
    server.failNext(1, { status: 429, retryAfter: 1 });
    const outcome = await releases.publish({ repo: 'studio/runner', tag: 'v2.0.0', assets: [] });
    expect(outcome).to.deep.equal({ created: true, htmlUrl: `${server.url}/studio/runner/releases/tag/v2.0.0`, assets: [] });
    expect(server.requests.map((r) => r.status)).to.deep.equal([502, 502, 429, 404, 201]);
  });

  const failures: readonly [string, Parameters<GitHubReleases['publish']>[0], number, string][] = [
    ['an unknown repository', { repo: 'studio/nope', tag: 'v9.0.0', assets: [] }, 404,
      'release in studio/nope: creating release v9.0.0: repository studio/nope not found, or the token cannot see it (HTTP 404)'],
    ['a commit GitHub refuses', { repo: 'studio/runner', tag: 'v9.0.0', commit: 'no-such-branch', assets: [] }, 422,
      'release in studio/runner: creating release v9.0.0: GitHub refused the input (HTTP 422: Validation Failed: target_commitish invalid)'],
  ];
  for (const [name, request, status, message] of failures) {
    it(`fails on ${name}, naming the repository`, async () => {
      const error = await releases.publish(request).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ReleaseError);
      expect(error).to.include({ status, repo: request.repo, exitCode: 1, message });
    });
  }

  it('does not send the token to an upload_url on another host', async () => {
    const elsewhere = new GitHubReleases({ token: TOKEN, apiUrl: server.githubApiUrl.replace('127.0.0.1', 'localhost') });
    try {
      const error = await elsewhere.publish({ repo: 'studio/runner', tag: 'v3.0.0', assets: [] }).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ReleaseError);
      expect((error as Error).message).to.match(/upload_url points to http:\/\/127\.0\.0\.1:\d+, not to http:\/\/localhost:\d+; refusing to send the token there$/);
    } finally {
      await elsewhere.close();
    }
  });
});
