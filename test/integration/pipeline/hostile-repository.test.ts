import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import type { RunRecord } from '../../../src/store/index.js';
import { runKeelson } from '../../support/cli.js';
import { cleanupRepos, git, makeRepo, tempDir } from '../../support/git.js';
import { encodings, filesUnder } from '../../support/leaks.js';

/**
 * A repository that tries to make keelson read the machine it runs on: committed symlinks,
 * absolute paths and `..` in keelson.yaml, the builder template and the build context,
 * operator-only keys, a template asking for privileges and for keelson's environment. Each run
 * is refused with a clear error, and no output of keelson holds the host's canary file or the
 * canary in keelson's environment, in any encoding.
 */
describe('a hostile repository cannot make keelson read the host', function () {
  this.timeout(180_000);
  const hostCanary = `HOST-CANARY-${randomBytes(8).toString('hex')}`;
  const envCanary = `ENV-CANARY-${randomBytes(8).toString('hex')}`;
  let host: string;
  let stateDir: string;
  let kubeconfig: string;
  const outputs: string[] = [];
  const runIds: string[] = [];
  const env = { GITHUB_TOKEN: envCanary, KEELSON_LOG_LEVEL: 'info' };

  before(async () => {
    host = await tempDir('keelson-host-');
    // What a commit must never reach: a 0600 file, a directory with it, a template and a Dockerfile.
    await writeFile(join(host, 'shadow'), `root:${hostCanary}:19000:0:99999:7:::\n`, { mode: 0o600 });
    await mkdir(join(host, 'dir'));
    await writeFile(join(host, 'dir', 'secret.txt'), `${hostCanary}\n`, { mode: 0o600 });
    await writeFile(join(host, 'dir', 'Dockerfile'), `FROM scratch\nCOPY secret.txt /\n# ${hostCanary}\n`);
    await writeFile(join(host, 'template.yaml'), `apiVersion: batch/v1\nkind: Job\nmetadata: { name: ${hostCanary.toLowerCase()} }\n`);
    await chmod(join(host, 'template.yaml'), 0o600);
    stateDir = join(await tempDir('keelson-hostile-state-'), 'state');
    // Never reached: every refusal below happens before keelson talks to a cluster.
    kubeconfig = join(host, 'kubeconfig');
    await writeFile(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: c',
      'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:9" } }]',
      'users: [{ name: u, user: { token: not-a-real-token } }]',
      'contexts: [{ name: c, context: { cluster: c, user: u } }]', '',
    ].join('\n'));
  });
  after(async () => {
    await cleanupRepos();
  });

  /** A repository with the given files (a string is content, `{ link }` a symlink) committed. */
  async function repository(files: Record<string, string | { link: string }>): Promise<string> {
    const repo = await makeRepo();
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(repo, path, '..'), { recursive: true });
      if (typeof content === 'string') await writeFile(join(repo, path), content);
      else await symlink(content.link, join(repo, path));
    }
    await git(repo, 'add', '--', '.');
    await git(repo, 'commit', '--quiet', '-m', 'hostile');
    for (const [path, content] of Object.entries(files)) {
      if (typeof content !== 'string') expect((await lstat(join(repo, path))).isSymbolicLink()).to.equal(true);
    }
    return repo;
  }

  /** `keelson run` of the repository; returns its run as the CLI reported it, every output kept for the final grep. */
  async function run(repo: string, ...flags: string[]): Promise<{ id: string; phase: string; message: string }> {
    const result = await runKeelson(['run', repo, '--state-dir', stateDir, ...flags], { env });
    outputs.push(result.stdout, result.stderr);
    const [, id, phase, message] = /keelson: run (\S+) (\w+): (.*)/.exec(result.stderr) ?? [];
    expect(id, result.stderr).to.be.a('string');
    expect(result.status, result.stderr).to.equal(phase === 'succeeded' ? 0 : 1);
    runIds.push(id!);
    return { id: id!, phase: phase!, message: message! };
  }

  function expectRefused(record: { phase: string; message: string }, message: RegExp): void {
    expect(record.phase).to.equal('failed');
    expect(record.message).to.match(message);
  }

  const deep = '../../../../../../../../../../../..';

  it('refuses a keelson.yaml that is a symlink out of the tree, absolute or relative', async () => {
    expectRefused(await run(await repository({ 'keelson.yaml': { link: join(host, 'shadow') } })),
      /^the repository pipeline "keelson\.yaml": is \(or passes through\) a symlink that leads out of the repository/);
    expectRefused(await run(await repository({ 'keelson.yaml': { link: `${deep}${join(host, 'shadow')}` } })),
      /keelson\.yaml.*symlink that leads out of the repository/);
    // A symlink inside the tree is followed.
    const inside = await run(await repository({ 'keelson.yaml': { link: 'ci/pipeline.yaml' }, 'ci/pipeline.yaml': 'steps: ["echo inside"]\n' }));
    expect(inside.phase).to.equal('succeeded');
  });

  it('refuses a build context or Dockerfile outside the tree: absolute, .., or through a symlink', async () => {
    const cases: Array<[Record<string, string | { link: string }>, RegExp]> = [
      [{ 'keelson.yaml': `build: { image: team/app, context: ${join(host, 'dir')} }\n` }, /^build\.context ".*": must be a path relative to the repository root/],
      [{ 'keelson.yaml': `build: { image: team/app, context: "${deep}${join(host, 'dir')}" }\n` }, /^build\.context ".*": leads out of the repository \(\.\.\)/],
      [{ 'keelson.yaml': 'build: { image: team/app, context: ctx }\n', ctx: { link: join(host, 'dir') } }, /^build\.context "ctx": is \(or passes through\) a symlink that leads out/],
      [{ 'keelson.yaml': `build: { image: team/app, dockerfile: ${join(host, 'dir', 'Dockerfile')} }\n` }, /^build\.dockerfile ".*": must be a path relative/],
      [{ 'keelson.yaml': 'build: { image: team/app }\n', Dockerfile: { link: join(host, 'dir', 'Dockerfile') } }, /^build\.dockerfile "Dockerfile": is \(or passes through\) a symlink that leads out/],
    ];
    for (const [files, message] of cases) expectRefused(await run(await repository(files)), message);
  });

  it('refuses operator-only keys in a repository keelson.yaml, naming them', async () => {
    const record = await run(await repository({
      'keelson.yaml': `steps: [env]\npassEnv: [GITHUB_TOKEN]\nregistryConfig: ${join(host, 'shadow')}\n`,
    }));
    expectRefused(record, /line 2: "passEnv" is an operator setting.*line 3: "registryConfig" is an operator setting/);
  });

  it('refuses a builder template outside the tree, and one that asks for privileges or for keelson\'s environment', async () => {
    const build = 'build: { image: team/app }\n';
    const k8s = ['--executor', 'kubernetes', '--kubeconfig', kubeconfig];
    expectRefused(await run(await repository({ 'keelson.yaml': `${build}kubernetes: { template: ${join(host, 'template.yaml')} }\n`, Dockerfile: 'FROM scratch\n' }), ...k8s),
      /^kubernetes\.template ".*": must be a path relative to the repository root/);
    expectRefused(await run(await repository({ 'keelson.yaml': `${build}kubernetes: { template: "${deep}${join(host, 'template.yaml')}" }\n`, Dockerfile: 'FROM scratch\n' }), ...k8s),
      /^kubernetes\.template ".*": leads out of the repository/);
    expectRefused(await run(await repository({ 'keelson.yaml': `${build}kubernetes: { template: job.yaml }\n`, 'job.yaml': { link: join(host, 'template.yaml') }, Dockerfile: 'FROM scratch\n' }), ...k8s),
      /^kubernetes\.template "job\.yaml": is \(or passes through\) a symlink that leads out/);

    const privileged = [
      'apiVersion: batch/v1', 'kind: Job', 'metadata: { name: "build-{{ID}}" }', 'spec:', '  template:', '    spec:',
      '      restartPolicy: Never', '      hostPID: true',
      '      containers: [{ name: b, image: busybox, securityContext: { privileged: true }, volumeMounts: [{ name: root, mountPath: /host }] }]',
      '      volumes: [{ name: root, hostPath: { path: / } }]', '',
    ].join('\n');
    const refused = await run(await repository({ 'keelson.yaml': `${build}kubernetes: { template: job.yaml }\n`, 'job.yaml': privileged, Dockerfile: 'FROM scratch\n' }), ...k8s);
    expectRefused(refused, /asks for hostNamespaces \(spec\.template\.spec\.hostPID\), hostPath \(spec\.template\.spec\.volumes\[0\] \(root\)\), privileged \(.*securityContext\.privileged\); refused/);

    // The operator may allow exactly this for this watch: then the Job passes the check and keelson
    // goes on to the cluster (here unreachable, so the run fails there, not as an invalid pipeline).
    const trusted = await repository({ 'keelson.yaml': `${build}kubernetes: { template: job.yaml }\n`, 'job.yaml': privileged, Dockerfile: 'FROM scratch\n' });
    await writeFile(join(host, 'ops.yaml'), `watches:\n  - { repo: "${trusted}", allowBuilder: [privileged, hostNamespaces, hostPath] }\n`);
    const allowed = await run(trusted, ...k8s, '--config', join(host, 'ops.yaml'));
    expect(allowed.phase).to.equal('failed');
    expect(allowed.message).to.match(/^kubernetes: /).and.not.match(/asks for/);

    const greedy = privileged.replace('hostPID: true', 'serviceAccountName: "{{ expandenv "$GITHUB_TOKEN" }}"');
    const noEnv = await run(await repository({ 'keelson.yaml': `${build}kubernetes: { template: job.yaml }\n`, 'job.yaml': greedy, Dockerfile: 'FROM scratch\n' }), ...k8s);
    // expandenv saw no environment: the account name rendered empty (keelson's GITHUB_TOKEN would
    // have made it a foreign service account, named in the refusal).
    expectRefused(noEnv, /asks for hostPath .*privileged/);
    expect(noEnv.message).not.to.contain('serviceAccount');
  });

  it('gives steps none of keelson\'s environment', async () => {
    const record = await run(await repository({ 'keelson.yaml': 'steps: ["env", "test -z \\"$GITHUB_TOKEN\\""]\n' }));
    expect(record.phase).to.equal('succeeded');
  });

  it('recorded every refusal as an invalid pipeline, and left no trace of the host file or keelson\'s environment in any output', async () => {
    const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir], { env });
    outputs.push(listed.stdout, listed.stderr);
    const records = JSON.parse(listed.stdout) as RunRecord[];
    expect(records.map((r) => r.id)).to.have.members(runIds);
    const refusals = records.filter((r) => r.phase === 'failed' && !r.message.startsWith('kubernetes: '));
    expect(refusals.length).to.be.greaterThan(10);
    for (const record of refusals) expect(record.reason).to.equal('InvalidPipeline');
    for (const id of [runIds[0]!, runIds.at(-2)!, runIds.at(-1)!]) {
      const logs = await runKeelson(['logs', id, '--state-dir', stateDir], { env });
      expect(logs.status, logs.stderr).to.equal(0);
      outputs.push(logs.stdout, logs.stderr);
    }
    for (const file of await filesUnder(stateDir)) outputs.push(await readFile(file, 'latin1'));
    expect(outputs.length).to.be.greaterThan(30);
    const all = outputs.join('\n');
    for (const form of [...Object.values(encodings(hostCanary)), ...Object.values(encodings(envCanary))]) expect(all).not.to.contain(form);
  });
});
