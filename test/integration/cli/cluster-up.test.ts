import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../support/cli.js';

const run = promisify(execFile);

describe('npm run cluster:up, as the README uses it', function () {
  this.timeout(300_000);
  let cache: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    // The manual cluster's state in a dir of its own (a person's `cluster:up` is left alone);
    // the binaries from the usual cache, so nothing is built.
    cache = await mkdtemp(path.join(tmpdir(), 'keelson-cluster-up-'));
    env = {
      ...process.env,
      XDG_CACHE_HOME: cache,
      KEELSON_CLUSTER_CACHE: process.env.KEELSON_CLUSTER_CACHE ?? path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'keelson-test-cluster'),
    };
  });
  after(async () => {
    await run('npm', ['run', '-s', 'cluster:down'], { cwd: REPO_ROOT, env }).catch(() => undefined);
    await rm(cache, { recursive: true, force: true });
  });

  it('prints where kubectl is, and its last line puts that kubectl on PATH with KUBECONFIG set', async () => {
    const { stdout } = await run('npm', ['run', '-s', 'cluster:up'], { cwd: REPO_ROOT, env });
    const lines = stdout.trimEnd().split('\n');
    const kubectl = /^kubectl: (\/\S+\/kubectl)$/.exec(lines.at(-2) ?? '')?.[1];
    expect(kubectl, stdout).to.be.a('string');
    const shell = await run('bash', ['-c', `eval "$1"; command -v kubectl; kubectl get nodes -o name | head -1`, 'bash', lines.at(-1)!], {
      cwd: tmpdir(), env: { ...process.env, PATH: '/usr/bin:/bin', KUBECONFIG: '' },
    });
    const [found, node] = shell.stdout.trim().split('\n');
    expect(found).to.equal(kubectl);
    expect(node).to.match(/^node\//);
  });
});
