import { expect } from 'chai';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import {
  archiveCommit, GitBranchNotFoundError, GitCommitNotFoundError, materializeCommit, mirrorName, parseWatchSpec,
} from '../../../src/git/index.js';
import { cleanupRepos, cloneRepo, commitFile, fileUrl, git, makeRepo, tempDir } from '../../support/git.js';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

async function tarEntries(stream: Readable): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const parser = extract();
  const done = new Promise<void>((resolve, reject) => {
    parser.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => chunks.push(c as Buffer));
      body.on('end', () => {
        if (header.type === 'file') entries.set(header.name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
    });
    parser.on('finish', resolve);
    parser.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(parser);
  await done;
  return entries;
}

describe('materializeCommit and archiveCommit against real repositories', function () {
  this.timeout(60_000);
  let cacheDir: string;

  before(async () => {
    cacheDir = await tempDir('keelson-cache-');
  });
  after(cleanupRepos);

  it('writes the committed tree of a local checkout, never its dirty work tree or index', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'app/main.txt', 'committed\n');
    const commit = await commitFile(repo, 'README', 'readme\n');
    await writeFile(join(repo, 'app/main.txt'), 'modified, not committed\n');
    await writeFile(join(repo, 'untracked.txt'), 'untracked\n');
    await writeFile(join(repo, 'staged.txt'), 'staged\n');
    await git(repo, 'add', 'staged.txt');
    const statusBefore = await git(repo, 'status', '--porcelain');

    const dest = join(await tempDir(), 'src');
    const tree = await materializeCommit(parseWatchSpec(`${repo}^main`), commit, dest, { cacheDir });

    expect(tree).to.deep.equal({ dir: dest, commit, submodules: [] });
    expect((await readdir(dest)).sort()).to.deep.equal(['README', 'app']);
    expect(await readFile(join(dest, 'app/main.txt'), 'utf8')).to.equal('committed\n');
    expect(await git(repo, 'status', '--porcelain')).to.equal(statusBefore);
  });

  it('materialises an older commit that is still on the branch', async () => {
    const repo = await makeRepo();
    const first = await commitFile(repo, 'v', '1');
    await commitFile(repo, 'v', '2');
    const dest = join(await tempDir(), 'src');
    await materializeCommit(parseWatchSpec(repo), first, dest, { cacheDir });
    expect(await readFile(join(dest, 'v'), 'utf8')).to.equal('1');
  });

  it('refuses a local commit that was amended away from its branch', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'v', '1');
    const amended = await commitFile(repo, 'v', '2');
    await git(repo, 'commit', '--quiet', '--amend', '-m', 'reworded');
    const error = await rejection(materializeCommit(parseWatchSpec(`${repo}^main`), amended, join(await tempDir(), 'src'), { cacheDir }));
    expect(error).to.be.instanceOf(GitCommitNotFoundError);
    expect(error.message).to.equal(`${repo}: commit ${amended} is no longer on branch "main" (force-pushed away?)`);
  });

  it('fetches a remote repository into one bare mirror, once per build', async () => {
    const origin = await makeRepo({ bare: true, branch: 'trunk' });
    const first = await commitFile(origin, 'v', '1');
    const spec = parseWatchSpec(fileUrl(origin));

    const one = join(await tempDir(), 'src');
    await materializeCommit(spec, first, one, { cacheDir, branch: 'trunk' });
    expect(await readFile(join(one, 'v'), 'utf8')).to.equal('1');
    const mirror = join(cacheDir, mirrorName(spec));
    expect(await git(mirror, 'rev-parse', '--is-bare-repository')).to.equal('true');

    const second = await commitFile(origin, 'v', '2');
    const two = join(await tempDir(), 'src');
    await materializeCommit(spec, second, two, { cacheDir }); // default branch: the remote HEAD
    expect(await readFile(join(two, 'v'), 'utf8')).to.equal('2');
    expect((await readdir(cacheDir)).filter((name) => name === mirrorName(spec))).to.have.length(1);
  });

  it('refuses a remote commit that a force-push removed, even though the mirror has it', async () => {
    const origin = await makeRepo({ bare: true });
    const base = await commitFile(origin, 'v', '1');
    const doomed = await commitFile(origin, 'v', '2');
    const spec = parseWatchSpec(`${fileUrl(origin)}^main`);
    await materializeCommit(spec, doomed, join(await tempDir(), 'src'), { cacheDir });

    await git(origin, 'update-ref', 'refs/heads/main', base);
    await commitFile(origin, 'v', 'rewritten');
    const error = await rejection(materializeCommit(spec, doomed, join(await tempDir(), 'src'), { cacheDir }));
    expect(error).to.be.instanceOf(GitCommitNotFoundError);
    expect(error.message).to.include('is no longer on branch "main"');
  });

  it('refuses a commit the remote never had, and a branch it does not have', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'v', '1');
    const elsewhere = await commitFile(await makeRepo(), 'other', 'x');
    const missing = await rejection(materializeCommit(parseWatchSpec(`${fileUrl(origin)}^main`), elsewhere, join(await tempDir(), 'src'), { cacheDir }));
    expect(missing).to.be.instanceOf(GitCommitNotFoundError);
    expect(missing.message).to.include('is not in the repository');
    const noBranch = await rejection(materializeCommit(parseWatchSpec(`${fileUrl(origin)}^gone`), elsewhere, join(await tempDir(), 'src'), { cacheDir }));
    expect(noBranch).to.be.instanceOf(GitBranchNotFoundError);
  });

  it('names the submodules it leaves out', async () => {
    const sub = await makeRepo();
    await commitFile(sub, 'lib.txt', 'lib');
    const repo = await makeRepo();
    await commitFile(repo, 'a', 'a');
    await git(repo, '-c', 'protocol.file.allow=always', 'submodule', '--quiet', 'add', fileUrl(sub), 'vendor/lib');
    await git(repo, 'commit', '--quiet', '-m', 'add submodule');
    const commit = await git(repo, 'rev-parse', 'HEAD');
    const dest = join(await tempDir(), 'src');
    const tree = await materializeCommit(parseWatchSpec(repo), commit, dest, { cacheDir });
    expect(tree.submodules).to.deep.equal(['vendor/lib']);
    expect(await readFile(join(dest, '.gitmodules'), 'utf8')).to.include('vendor/lib');
  });

  it('refuses a destination that is not empty', async () => {
    const repo = await makeRepo();
    const commit = await commitFile(repo, 'a', 'a');
    const dest = await tempDir();
    await writeFile(join(dest, 'leftover'), 'x');
    const error = await rejection(materializeCommit(parseWatchSpec(repo), commit, dest, { cacheDir }));
    expect(error.message).to.equal(`${dest}: must be empty to receive a source tree`);
    await rm(join(dest, 'leftover'));
  });

  it('streams the committed tree as tar, from a clone with unpushed work', async () => {
    const origin = await makeRepo({ bare: true });
    await commitFile(origin, 'pushed.txt', 'pushed');
    const clone = await cloneRepo(fileUrl(origin));
    const local = await commitFile(clone, 'local.txt', 'local only');
    await writeFile(join(clone, 'dirty.txt'), 'dirty');
    const entries = await tarEntries(await archiveCommit(parseWatchSpec(`${clone}^main`), local, { cacheDir }));
    expect([...entries.keys()].sort()).to.deep.equal(['local.txt', 'pushed.txt']);
    expect(entries.get('local.txt')).to.equal('local only');
  });
});
