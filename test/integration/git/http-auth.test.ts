import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  GitAuthError, materializeCommit, mirrorName, parseWatchSpec, RemoteHeadReader, type WatchSpec,
} from '../../../src/git/index.js';
import { cleanupRepos, commitFile, makeRepo, startGitHttpServer, tempDir, type GitHttpServer } from '../../support/git.js';

async function authFailure(spec: WatchSpec): Promise<GitAuthError> {
  try {
    await new RemoteHeadReader(spec).readHead();
  } catch (error) {
    if (error instanceof GitAuthError) return error;
    throw error;
  }
  throw new Error('readHead succeeded without the right credentials');
}

describe('credentials in URLs against git http-backend with basic auth', function () {
  this.timeout(60_000);
  const password = 'http-backend-pw-42';
  let server: GitHttpServer | undefined;
  let base: string;
  let commit: string;

  before(async () => {
    const origin = await makeRepo({ bare: true });
    commit = await commitFile(origin, 'v', 'served over http');
    server = await startGitHttpServer({ root: dirname(origin), user: 'bot', password });
    base = `${server.url.replace('http://', `http://bot:${password}@`)}/${basename(origin)}`;
  });
  after(async () => {
    await server?.stop();
    await cleanupRepos();
  });

  it('reads the head with the credentials from the URL', async () => {
    expect(await new RemoteHeadReader(parseWatchSpec(`${base}^main`)).readHead()).to.deep.equal({ branch: 'main', commit });
  });

  it('fails with GitAuthError, without prompting and without the password, when the credentials are wrong or missing', async () => {
    const wrong = await authFailure(parseWatchSpec(`${base.replace(password, 'not-the-password')}^main`));
    expect(wrong.code).to.equal('KEELSON_GIT_AUTH');
    expect(wrong.message).to.not.include('not-the-password');
    const none = await authFailure(parseWatchSpec(`${base.replace(`bot:${password}@`, '')}^main`));
    expect(none.message).to.match(/authentication failed/);
  });

  it('fetches into the mirror without writing the credentials into it', async () => {
    const cacheDir = await tempDir('keelson-cache-');
    const spec = parseWatchSpec(`${base}^main`);
    const dest = join(await tempDir(), 'src');
    await materializeCommit(spec, commit, dest, { cacheDir });
    expect(await readFile(join(dest, 'v'), 'utf8')).to.equal('served over http');
    expect(await readFile(join(cacheDir, mirrorName(spec), 'config'), 'utf8')).to.not.include(password);
  });
});
