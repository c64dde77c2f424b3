/**
 * `keelson daemon --config` with a git watch of a real repository and a GitHub webhook secret: a
 * delivery with a wrong or missing signature is 401 and polls nothing; the same delivery signed
 * with the secret polls the watch at once and builds the pushed commit, once however often it is
 * replayed. /webhooks/registry takes the token of --registry-token-file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { signGitHubBody } from '../../../src/server/index.js';
import type { RunRecord } from '../../../src/store/index.js';
import { cleanupRepos, commitFile, fileUrl, makeRepo } from '../../support/git.js';
import { startDaemon, stopAllDaemons, until, type DaemonProcess } from './daemon-process.js';

const SECRET = 'webhook-secret-for-tests';
const REGISTRY_TOKEN = 'registry-token-for-tests';

describe('keelson daemon: GitHub push webhooks', function () {
  this.timeout(120_000);
  let dir = '';
  let repo = '';
  let daemon: DaemonProcess;

  const runs = async (): Promise<RunRecord[]> => (await (await fetch(`${daemon.url}/api/runs`)).json()) as RunRecord[];
  const deliver = (body: string, signature?: string) => fetch(`${daemon.url}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': 'd3b07384-d9a0-4c5b-9c3e-000000000001',
      ...(signature ? { 'x-hub-signature-256': signature } : {}),
    },
    body,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keelson-daemon-github-'));
    repo = await makeRepo({ bare: true });
    await commitFile(repo, 'README.md', 'one\n');
    await writeFile(join(dir, 'github-secret'), `${SECRET}\n`);
    await writeFile(join(dir, 'registry-token'), `${REGISTRY_TOKEN}\n`);
    // An hour between polls: only the start and a webhook can poll within this test.
    await writeFile(join(dir, 'keelson.yaml'), [
      'watches:',
      `  - ${fileUrl(repo)}^main`,
      'schedule: "@every 1h"',
      'steps:',
      '  - test -f README.md',
      '',
    ].join('\n'));
    daemon = await startDaemon([
      '--config', join(dir, 'keelson.yaml'), '--no-rollouts', '--state-dir', join(dir, 'state'),
      '--github-secret-file', join(dir, 'github-secret'), '--registry-token-file', join(dir, 'registry-token'),
    ]);
    await until(async () => (await runs()).some((r) => r.phase === 'succeeded'), 'the first commit to be built');
  });

  after(async () => {
    await stopAllDaemons();
    await cleanupRepos();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a forged delivery is 401 and polls nothing; the signed one builds the pushed commit', async () => {
    const pushed = await commitFile(repo, 'README.md', 'two\n');
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: pushed,
      deleted: false,
      repository: { clone_url: fileUrl(repo), html_url: 'https://github.invalid/team/app' },
    });

    const forged = await deliver(body, signGitHubBody('not-the-secret', body));
    expect(forged.status).to.equal(401);
    const unsigned = await deliver(body);
    expect(unsigned.status).to.equal(401);
    // A valid signature over another body is no signature for this one.
    const replayed = await deliver(body.replace('refs/heads/main', 'refs/heads/other'), signGitHubBody(SECRET, body));
    expect(replayed.status).to.equal(401);
    // The rejection happens before anything is handed to the watcher: nothing polled, nothing built.
    // A run of refusals is one warning (the rest are counted into a summary line).
    expect(daemon.logs.filter((l) => l.msg === 'github webhook with a bad signature')).to.have.length(1);
    expect(daemon.logs.some((l) => l.msg === 'github push received' || l.msg === 'github push webhook')).to.equal(false);
    expect((await runs()).map((r) => r.commit)).to.not.include(pushed);

    const signed = await deliver(body, signGitHubBody(SECRET, body));
    expect(signed.status).to.equal(202);
    expect(await signed.json()).to.deep.equal({ branch: 'main', commit: pushed });
    const built = await until(async () => (await runs()).find((r) => r.commit === pushed && r.phase === 'succeeded'), 'the pushed commit to be built');
    expect(built.branch).to.equal('main');
    expect((await runs()).filter((r) => r.commit === pushed)).to.have.length(1);

    const again = await deliver(body, signGitHubBody(SECRET, body));
    expect(again.status).to.equal(200);
    expect(await again.json()).to.include({ replayed: true });
  });

  it('/webhooks/registry needs the token of --registry-token-file', async () => {
    const notification = JSON.stringify({ events: [{ action: 'push', target: { repository: 'team/app', tag: '1.0.0' }, request: { host: '127.0.0.1:5000' } }] });
    const notify = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${daemon.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: notification });
    expect((await notify('/webhooks/registry')).status).to.equal(401);
    expect((await notify('/webhooks/registry', { authorization: 'Bearer wrong' })).status).to.equal(401);
    expect((await notify('/webhooks/registry', { authorization: `Bearer ${REGISTRY_TOKEN}` })).status).to.equal(202);
    expect((await notify(`/webhooks/registry?token=${REGISTRY_TOKEN}`)).status).to.equal(202);
    expect(JSON.stringify(daemon.logs)).not.to.include(REGISTRY_TOKEN);
  });
});
