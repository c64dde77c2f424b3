import { expect } from 'chai';
import { mkdir, realpath, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../../../src/errors.js';
import { parseWatchSpec } from '../../../src/git/index.js';
import { cleanupRepos, makeRepo, tempDir } from '../../support/git.js';

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

describe('parseWatchSpec with local paths (real repositories)', function () {
  this.timeout(30_000);
  after(cleanupRepos);

  it('resolves "." to the absolute path of the work tree', async () => {
    const repo = await makeRepo();
    const spec = parseWatchSpec('.^feature-x', { cwd: repo });
    expect(spec).to.deep.equal({
      key: `${await realpath(repo)}^feature-x`, repo: await realpath(repo), kind: 'local', branch: 'feature-x', display: '.^feature-x',
    });
  });

  it('resolves a relative path and a bare repository', async () => {
    const bare = await makeRepo({ bare: true });
    const spec = parseWatchSpec('../../../repo.git', { cwd: join(bare, 'refs', 'heads') });
    expect(spec.kind).to.equal('local');
    expect(spec.repo).to.equal(await realpath(bare));
    expect(spec.key).to.equal(`${await realpath(bare)}^HEAD`);
  });

  it('gives one key to a path and a symlink to it', async () => {
    const repo = await makeRepo();
    const link = join(await tempDir(), 'link');
    await symlink(repo, link);
    expect(parseWatchSpec(`${link}^main`).key).to.equal(parseWatchSpec(`${repo}^main`).key);
  });

  it('refuses a directory that is not a repository, naming it as written', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'a'));
    await mkdir(join(root, 'x'));
    const error = inputError(() => parseWatchSpec('../x^main', { cwd: join(root, 'a') }));
    expect(error.message).to.equal('../x: not a git repository');
    expect(error.exitCode).to.equal(2);
  });

  it('refuses a folder inside a work tree, which is not itself a repository', async () => {
    const repo = await makeRepo();
    await mkdir(join(repo, 'sub'));
    expect(inputError(() => parseWatchSpec('sub', { cwd: repo })).message).to.equal('sub: not a git repository');
  });

  it('refuses a path that does not exist', async () => {
    const root = await tempDir();
    expect(inputError(() => parseWatchSpec('./missing', { cwd: root })).message).to.equal('./missing: no such directory');
  });
});
