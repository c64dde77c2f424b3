import { expect } from 'chai';
import { join } from 'node:path';
import {
  GitBranchNotFoundError, GitRepositoryNotFoundError, GitUnreachableError, LocalHeadReader, parseWatchSpec, RemoteHeadReader,
  type HeadReader,
} from '../../../src/git/index.js';
import {
  cleanupRepos, cloneRepo, commitFile, fileUrl, git, makeRepo, push, setDefaultBranch, tempDir,
} from '../../support/git.js';

async function rejection(reader: HeadReader): Promise<Error> {
  try {
    await reader.readHead();
  } catch (error) {
    return error as Error;
  }
  throw new Error('readHead resolved but was expected to fail');
}

describe('head readers against real repositories', function () {
  this.timeout(60_000);
  let bare: string;
  let trunk: string;
  let dev: string;

  before(async () => {
    bare = await makeRepo({ bare: true, branch: 'trunk' });
    trunk = await commitFile(bare, 'README', 'trunk\n', 'first on trunk');
    dev = await commitFile(bare, 'README', 'dev\n', 'first on dev', { branch: 'dev' });
  });
  after(cleanupRepos);

  describe('RemoteHeadReader (git ls-remote)', () => {
    it('follows the remote HEAD symref when no branch is named, never a hard-coded name', async () => {
      const head = await new RemoteHeadReader(parseWatchSpec(fileUrl(bare))).readHead();
      expect(head).to.deep.equal({ branch: 'trunk', commit: trunk });
    });

    it('follows the default branch when the remote HEAD moves', async () => {
      const other = await makeRepo({ bare: true, branch: 'main' });
      const first = await commitFile(other, 'a', '1');
      const second = await commitFile(other, 'a', '2', 'on release', { branch: 'release' });
      const reader = new RemoteHeadReader(parseWatchSpec(fileUrl(other)));
      expect(await reader.readHead()).to.deep.equal({ branch: 'main', commit: first });
      await setDefaultBranch(other, 'release');
      expect(await reader.readHead()).to.deep.equal({ branch: 'release', commit: second });
    });

    it('reads a named branch', async () => {
      const head = await new RemoteHeadReader(parseWatchSpec(`${fileUrl(bare)}^dev`)).readHead();
      expect(head).to.deep.equal({ branch: 'dev', commit: dev });
    });

    it('says which branch is missing', async () => {
      const error = await rejection(new RemoteHeadReader(parseWatchSpec(`${fileUrl(bare)}^nope`)));
      expect(error).to.be.instanceOf(GitBranchNotFoundError);
      expect(error.message).to.equal(`${fileUrl(bare)}: branch "nope" does not exist`);
    });

    it('reports an empty repository as having no default branch', async () => {
      const empty = await makeRepo({ bare: true });
      const error = await rejection(new RemoteHeadReader(parseWatchSpec(fileUrl(empty))));
      expect(error).to.be.instanceOf(GitBranchNotFoundError);
      expect(error.message).to.match(/no default branch.*REPO\^BRANCH/);
    });

    it('reports a repository that is not there as not found (bad input, exit 2)', async () => {
      const missing = join(await tempDir(), 'gone.git');
      const error = await rejection(new RemoteHeadReader(parseWatchSpec(`${fileUrl(missing)}^main`)));
      expect(error).to.be.instanceOf(GitRepositoryNotFoundError);
      expect((error as GitRepositoryNotFoundError).code).to.equal('KEELSON_GIT_REPOSITORY_NOT_FOUND');
      expect((error as GitRepositoryNotFoundError).exitCode).to.equal(2);
      expect(error.message).to.include('does not appear to be a git repository');
    });

    it('reports a refused connection as unreachable without showing the password', async () => {
      const spec = parseWatchSpec('http://bot:pw-never-shown@127.0.0.1:1/org/repo.git^main');
      const error = await rejection(new RemoteHeadReader(spec));
      expect(error).to.be.instanceOf(GitUnreachableError);
      expect(error.message).to.not.include('pw-never-shown');
      expect(error.message).to.match(/^http:\/\/127\.0\.0\.1:1\/org\/repo\.git: cannot reach/);
    });
  });

  describe('LocalHeadReader (git rev-parse)', () => {
    it('sees commits in a clone that were never pushed, on the checked-out branch by default', async () => {
      const clone = await cloneRepo(fileUrl(bare));
      const local = await commitFile(clone, 'local.txt', 'not pushed\n', 'local only');
      const head = await new LocalHeadReader(parseWatchSpec(clone)).readHead();
      expect(head).to.deep.equal({ branch: 'trunk', commit: local });
      expect(await git(bare, 'rev-parse', 'trunk')).to.equal(trunk);
    });

    it('reads a named branch of a work tree that has another branch checked out', async () => {
      const clone = await cloneRepo(fileUrl(bare));
      await git(clone, 'branch', 'topic', 'origin/dev');
      const head = await new LocalHeadReader(parseWatchSpec(`${clone}^topic`)).readHead();
      expect(head).to.deep.equal({ branch: 'topic', commit: dev });
    });

    it('reads a bare repository, following its HEAD', async () => {
      expect(await new LocalHeadReader(parseWatchSpec(bare)).readHead()).to.deep.equal({ branch: 'trunk', commit: trunk });
    });

    it('says which branch is missing', async () => {
      const error = await rejection(new LocalHeadReader(parseWatchSpec(`${bare}^nope`)));
      expect(error).to.be.instanceOf(GitBranchNotFoundError);
      expect(error.message).to.equal(`${bare}: branch "nope" does not exist`);
    });

    it('refuses to guess a branch when HEAD is detached', async () => {
      const clone = await cloneRepo(fileUrl(bare));
      await git(clone, 'checkout', '--quiet', '--detach');
      const error = await rejection(new LocalHeadReader(parseWatchSpec(clone)));
      expect(error).to.be.instanceOf(GitBranchNotFoundError);
      expect(error.message).to.include('HEAD is detached');
    });

    it('reports a branch with no commits yet', async () => {
      const fresh = await makeRepo({ branch: 'main' });
      const error = await rejection(new LocalHeadReader(parseWatchSpec(fresh)));
      expect(error).to.be.instanceOf(GitBranchNotFoundError);
      expect(error.message).to.include('branch "main" has no commits yet');
    });
  });

  it('pushes a clone\'s commit and the remote reader sees it', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'x', 'x');
    const clone = await cloneRepo(fileUrl(origin));
    const pushed = await commitFile(clone, 'x', 'y');
    await push(clone);
    const head = await new RemoteHeadReader(parseWatchSpec(`${fileUrl(origin)}^main`)).readHead();
    expect(head.commit).to.equal(pushed);
  });
});
