/**
 * Every secret keelson accepts gets a canary of its own: the registry password (Makisu config and
 * docker config.json), the commit-status token, the status page's bearer token, the GitHub
 * webhook secret, the registry webhook token, the Redis password, a variable of keelson's
 * environment that steps do not get and one the operator passes on. Then the failures that tend
 * to print them: a step that prints what it got (plain, base64, base64url, URL-encoded, split
 * between two reads), a forge that echoes the credentials it was sent, forged webhooks, wrong
 * passwords, an unreachable Redis. No output surface holds any canary in any encoding.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { signGitHubBody } from '../../../src/server/index.js';
import type { RunRecord } from '../../../src/store/index.js';
import { runKeelson } from '../../support/cli.js';
import { startContractServer, type ContractServer } from '../../support/contract-server.js';
import { cleanupRepos, git, makeRepo, tempDir } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { encodings, filesUnder } from '../../support/leaks.js';
import { startRedis, type RunningRedis } from '../../support/redis.js';
import { freePort, startRegistry, type RunningRegistry } from '../../support/registry.js';
import { startDaemon, stopAllDaemons, until, type DaemonProcess } from './daemon-process.js';

function canary(name: string): string {
  return `${name}-canary-${randomBytes(9).toString('base64url')}`;
}

describe('no secret keelson accepts reaches any output, in any encoding', function () {
  this.timeout(300_000);
  const secrets = {
    statusToken: canary('status'),
    bearer: canary('bearer'),
    webhook: canary('webhook'),
    registryToken: canary('regtoken'),
    redis: canary('redis'),
    dockerConfig: canary('docker'),
    operatorEnv: canary('openv'),
    passedEnv: canary('passed'),
    registryPassword: '',
  };
  const outputs: Array<{ where: string; text: string }> = [];
  const keep = (where: string, text: string): void => {
    outputs.push({ where, text });
  };
  let dir: string;
  let registry: RunningRegistry;
  let redis: RunningRedis;
  let forge: ContractServer;
  let daemon: DaemonProcess;
  let repo: string;
  let run: RunRecord;

  before(async () => {
    dir = await tempDir('keelson-leaks-');
    registry = await startRegistry({ auth: true });
    secrets.registryPassword = registry.password!;
    redis = await startRedis({ password: secrets.redis });
    // The forge knows another token: keelson's is refused, and the first answers echo it back.
    forge = await startContractServer({ github: { tokens: { 'ghp_other-token-000': ['org/app'] } } });
    forge.failNext(2, { status: 401, echoCredentials: true });

    repo = await makeRepo();
    await copyFile(join(baseImageDir(), 'busybox'), join(repo, 'busybox'));
    await writeFile(join(repo, 'Dockerfile'), await readFile(join(baseImageDir(), 'Containerfile'), 'utf8'));
    await git(repo, 'add', '--', '.');
    await git(repo, 'commit', '--quiet', '-m', 'an image');

    const file = (name: string, text: string) => writeFile(join(dir, name), `${text}\n`, { mode: 0o600 });
    await file('status-token', secrets.statusToken);
    await file('bearer', secrets.bearer);
    await file('github-secret', secrets.webhook);
    await file('registry-token', secrets.registryToken);
    await file('registry-password', secrets.registryPassword);
    await file('registry.yaml', [
      `${registry.host}:`, '  ".*":', '    security:', '      tls: { client: { disabled: true } }',
      `      basic: { username: ${registry.username}, password_file: ${join(dir, 'registry-password')} }`,
    ].join('\n'));
    // A step that prints everything it was given, in the encodings tools use, and the passed
    // token split between two reads of its output.
    const steps = [
      'env | sort',
      'test -z "$OP_SECRET"',
      `node -e 'const t = process.env.PASSED_TOKEN; console.log(Buffer.from(t).toString("base64"), Buffer.from("Bearer " + t).toString("base64url"), encodeURIComponent(t), "Authorization: Basic " + Buffer.from("ci:" + t).toString("base64"))'`,
      'head=${PASSED_TOKEN%????????????}; printf "split: %s" "$head"; sleep 0.5; printf "%s\\n" "${PASSED_TOKEN#"$head"}"',
    ];
    await file('ops.yaml', [
      'watches:', `  - ${repo}^main`,
      'schedule: "@every 1h"',
      `stateDir: ${join(dir, 'state')}`,
      `registry: ${registry.host}`,
      `registryConfig: ${join(dir, 'registry.yaml')}`,
      'passEnv: [PASSED_TOKEN]',
      `steps: ${JSON.stringify(steps)}`,
      'build: { image: leaks/app }',
      'publicUrl: http://keelson.example.test',
      'report:',
      '  statuses:',
      `    - { provider: github, apiUrl: ${forge.githubApiUrl}, repository: org/app, tokenFile: ${join(dir, 'status-token')} }`,
      'server:',
      `  githubSecretFile: ${join(dir, 'github-secret')}`,
    ].join('\n'));

    daemon = await startDaemon([
      '--config', join(dir, 'ops.yaml'), '--no-rollouts',
      '--token-file', join(dir, 'bearer'), '--registry-token-file', join(dir, 'registry-token'),
    ], { ...buildahInvocation().env, OP_SECRET: secrets.operatorEnv, PASSED_TOKEN: secrets.passedEnv });
    run = await until(async () => {
      const runs = (await (await fetch(`${daemon.url}/api/runs`)).json()) as RunRecord[];
      return runs.find((r) => ['succeeded', 'failed'].includes(r.phase));
    }, 'the first run to finish', 240_000);
  });

  after(async () => {
    await stopAllDaemons();
    await forge?.stop();
    await redis?.stop();
    await registry?.stop();
    await cleanupRepos();
  });

  it('builds and pushes with the registry password, while every step prints what it was given', async () => {
    expect(run.phase, run.message).to.equal('succeeded');
    expect(run.image?.pushed).to.equal(true);
    const log = await (await fetch(`${daemon.url}/api/runs/${run.id}/log`)).text();
    keep('GET /api/runs/ID/log', log);
    // The steps did print the passed token, and the forge did echo the status token: all of it hidden.
    expect(log).to.contain('PASSED_TOKEN=[REDACTED]');
    expect(log).to.match(/split: \[REDACTED\]/);
    expect(log).to.match(/report: .*Bad credentials: Bearer \[REDACTED\]/);
    expect(log).not.to.match(/^OP_SECRET=/m);
  });

  it('hides them on every page and API answer, with and without signing in, and from webhooks', async () => {
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${daemon.url}${path}`, { headers, redirect: 'manual' });
      keep(`GET ${path}`, `${response.status} ${JSON.stringify([...response.headers])} ${await response.text()}`);
    };
    const paths = ['/', `/runs/${run.id}`, '/login', '/healthz', '/readyz', '/metrics', '/api/runs', `/api/runs/${run.id}`,
      `/api/runs/${run.id}/log?follow=1`, '/api/watches', '/api/registry', '/api/workloads', '/api/approvals', '/api/dependencies'];
    for (const path of paths) await get(path);
    // Signed in with the bearer token: the same pages, as an operator sees them.
    const login = await fetch(`${daemon.url}/login`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: secrets.bearer, next: '/' }).toString(),
    });
    keep('POST /login', `${login.status} ${await login.text()}`);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(cookie).to.match(/=/);
    for (const path of paths) await get(path, { cookie });
    await get('/api/runs', { authorization: `Bearer ${secrets.bearer}` });

    const body = JSON.stringify({ ref: 'refs/heads/main', after: '0'.repeat(40), repository: { clone_url: repo } });
    const deliver = async (signature: string) => {
      const response = await fetch(`${daemon.url}/webhooks/github`, {
        method: 'POST', body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomBytes(8).toString('hex'), 'x-hub-signature-256': signature },
      });
      keep('POST /webhooks/github', `${response.status} ${await response.text()}`);
    };
    await deliver(signGitHubBody('wrong-secret', body));
    await deliver(signGitHubBody(secrets.webhook, body));
    for (const query of ['?token=wrong', `?token=${secrets.registryToken}`]) {
      const response = await fetch(`${daemon.url}/webhooks/registry${query}`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ action: 'push', target: { repository: 'leaks/app', tag: 'main' }, request: { host: registry.host } }] }),
      });
      keep('POST /webhooks/registry', `${response.status} ${await response.text()}`);
    }
    await get('/metrics');
  });

  it('hides them from the CLI: runs, logs, a Redis store, a wrong password, an unreachable Redis, a refused docker config', async () => {
    const cli = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const result = await runKeelson(args, { env: { KEELSON_LOG_LEVEL: 'debug', ...env } });
      keep(`keelson ${args[0]}`, `${result.status}\n${result.stdout}\n${result.stderr}`);
      return result;
    };
    expect((await cli(['runs', '--json', '--state-dir', join(dir, 'state')])).status).to.equal(0);
    expect((await cli(['logs', run.id, '--state-dir', join(dir, 'state')])).stdout).to.contain('[REDACTED]');

    // The Redis store: the password in the URL, a step printing a passed variable.
    const tmp = join(dir, 'tmp');
    await mkdir(tmp);
    const inRedis = await cli(['run', repo, '--redis', redis.url, '--pass-env', 'PASSED_TOKEN', '--step', 'echo "token=$PASSED_TOKEN"; echo "$REDIS_URL"'],
      { PASSED_TOKEN: secrets.passedEnv, REDIS_URL: redis.url, TMPDIR: tmp });
    expect(inRedis.status, inRedis.stderr).to.equal(0);
    expect(inRedis.stdout).to.contain('token=[REDACTED]');
    await cli(['runs', '--json', '--redis', redis.url]);
    await cli(['runs', '--json', '--redis', redis.url.replace(secrets.redis, canary('wrong'))]);
    await cli(['runs', '--json', '--redis', `redis://:${secrets.redis}@127.0.0.1:${await freePort()}/0`]);
    const client = new Redis(redis.port, '127.0.0.1', { password: secrets.redis, lazyConnect: true });
    try {
      await client.connect();
      for (const key of await client.keys('*')) {
        const type = await client.type(key);
        const value = type === 'string' ? await client.get(key)
          : type === 'hash' ? JSON.stringify(await client.hgetall(key))
            : type === 'list' ? JSON.stringify(await client.lrange(key, 0, -1))
              : type === 'zset' ? JSON.stringify(await client.zrange(key, 0, -1))
                : type === 'set' ? JSON.stringify(await client.smembers(key)) : type;
        keep(`redis ${key}`, `${key} ${value}`);
      }
    } finally {
      client.disconnect();
    }
    for (const file of await filesUnder(tmp)) keep(file, await readFile(file, 'latin1'));

    // A docker config whose password the registry refuses.
    await writeFile(join(dir, 'docker.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${registry.username}:${secrets.dockerConfig}`).toString('base64') } } }));
    const promoted = await cli(['promote', `${registry.host}/leaks/app:main`, '--to', `${registry.host}/leaks/copy:1`, '--docker-config', join(dir, 'docker.json')]);
    expect(promoted.status).not.to.equal(0);
  });

  it('left no canary in the daemon output, the state dir, or anything gathered above', async () => {
    // Stopped first: while it runs, <state>/auth holds the builders' docker config (0600), which
    // is where the registry password must be; it goes when keelson stops.
    const stopped = await daemon.stop('SIGTERM');
    expect(stopped.code).to.equal(0);
    keep('daemon stderr', JSON.stringify(daemon.logs));
    for (const file of await filesUnder(join(dir, 'state'))) keep(file, await readFile(file, 'latin1'));
    expect(outputs.length).to.be.greaterThan(40);
    const found: string[] = [];
    for (const [name, secret] of Object.entries(secrets)) {
      for (const [encoding, form] of Object.entries(encodings(secret))) {
        for (const { where, text } of outputs) if (text.includes(form)) found.push(`${name} (${encoding}) in ${where}`);
      }
    }
    expect(found).to.deep.equal([]);
  });
});
