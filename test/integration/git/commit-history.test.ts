import { expect } from 'chai';
import { gitCommitHistory, parseWatchSpec } from '../../../src/git/index.js';
import { cleanupRepos, commitFile, fileUrl, git, makeRepo, tempDir } from '../../support/git.js';

describe('gitCommitHistory: the commits between the last one done and a new head', function () {
  this.timeout(60_000);
  let repo: string;
  let commits: string[];

  before(async () => {
    repo = await makeRepo({ branch: 'main' });
    commits = [];
    for (let i = 0; i < 6; i++) commits.push(await commitFile(repo, 'a.txt', `v${i}`));
  });
  after(() => cleanupRepos());

  const cases: Array<[string, boolean]> = [['a local checkout', false], ['a remote (file://) through its mirror', true]];
  for (const [what, remote] of cases) {
    it(`lists them oldest first, without both ends, for ${what}`, async () => {
      const history = gitCommitHistory({ cacheDir: await tempDir('keelson-mirrors-') });
      const spec = parseWatchSpec(remote ? `${fileUrl(repo)}^main` : `${repo}^main`);
      expect(await history.between(spec, commits[0]!, commits[5]!, 100)).to.deep.equal({ commits: commits.slice(1, 5), omitted: 0 });
    });
  }

  it('stops at the limit and says how many older ones it left out, naming the newest of those', async () => {
    const history = gitCommitHistory({ cacheDir: await tempDir('keelson-mirrors-') });
    const range = await history.between(parseWatchSpec(`${repo}^main`), commits[0]!, commits[5]!, 2);
    expect(range).to.deep.equal({ commits: [commits[3], commits[4]], omitted: 2, newestOmitted: commits[2] });
  });

  it('lists nothing when the last commit done is unknown to the repository (force-pushed away and collected)', async () => {
    const history = gitCommitHistory({ cacheDir: await tempDir('keelson-mirrors-') });
    const range = await history.between(parseWatchSpec(`${repo}^main`), 'f'.repeat(40), commits[5]!, 100);
    expect(range).to.deep.equal({ commits: [], omitted: 0 });
    expect(await git(repo, 'rev-parse', 'HEAD')).to.equal(commits[5]);
  });
});
