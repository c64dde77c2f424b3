import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { CoreV1Api } from '@kubernetes/client-node';
import { runKeelson } from '../../support/cli.js';
import { sharedCluster, type RunningCluster } from '../../support/cluster.js';
import { cleanupRepos, commitFile, makeRepo, tempDir } from '../../support/git.js';

describe('keelson watch --executor kubernetes against a kwok cluster', function () {
  this.timeout(180_000);
  let cluster: RunningCluster;

  before(async function () {
    this.timeout(60 * 60_000);
    cluster = await sharedCluster();
  });
  after(() => cleanupRepos());

  it('builds a local commit once in the cluster and keelson runs --json shows the run', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'src/main.txt', 'never pushed\n');
    const commit = await commitFile(repo, 'Dockerfile', 'FROM scratch\nCOPY src /src\n');
    const work = await tempDir('keelson-k8s-cli-');
    const stateDir = join(work, 'state');
    const config = join(work, 'keelson.yaml');
    await writeFile(config, 'build:\n  image: team/app\nkubernetes:\n  keepFailed: 1h\n');
    await cluster.writePodLogs(['kaniko: built from the cluster']);

    const watched = await runKeelson([
      'watch', `${repo}^main`, '--executor', 'kubernetes', '--kubeconfig', cluster.kubeconfigPath,
      '--once', '--state-dir', stateDir, '--config', config, '--registry', '127.0.0.1:5000',
    ]);
    expect(watched.status, `${watched.stdout}\n${watched.stderr}`).to.equal(0);

    const listed = await runKeelson(['runs', '--json', '--state-dir', stateDir]);
    expect(listed.status, listed.stderr).to.equal(0);
    const runs = JSON.parse(listed.stdout) as Array<{ id: string; phase: string; commit: string; executor?: string; image?: { ref: string } }>;
    expect(runs).to.have.length(1);
    expect(runs[0]).to.deep.include({ phase: 'succeeded', commit });
    expect(runs[0]!.image?.ref).to.equal('127.0.0.1:5000/team/app:main');
    const logs = await runKeelson(['logs', runs[0]!.id, '--state-dir', stateDir]);
    expect(logs.stdout).to.contain('kaniko: built from the cluster');
    // the run's namespace is gone (or going): a successful run leaves nothing behind
    const namespaces = await cluster.kubeConfig().makeApiClient(CoreV1Api).listNamespace({ labelSelector: `keelson.dev/run=${runs[0]!.id}` });
    expect(namespaces.items.every((ns) => ns.status?.phase === 'Terminating')).to.equal(true);
  });

  it("runs a repository's own pipeline under the operator's kubernetes limits, which the repository cannot lift", async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'big.bin', 'x'.repeat(64 * 1024));
    await commitFile(repo, 'Dockerfile', 'FROM scratch\nCOPY big.bin /\n');
    await commitFile(repo, 'keelson.yaml', 'build:\n  image: team/app\nkubernetes:\n  builder: buildah\n');
    const work = await tempDir('keelson-k8s-cli-');
    const stateDir = join(work, 'state');
    // No steps and no build: each run uses the repository's keelson.yaml, with these limits.
    const config = join(work, 'keelson.yaml');
    await writeFile(config, 'kubernetes:\n  maxSourceBytes: 16384\n  keepFailed: 0s\n');
    const watch = (): Promise<{ status: number | null; stdout: string; stderr: string }> => runKeelson([
      'watch', `${repo}^main`, '--executor', 'kubernetes', '--kubeconfig', cluster.kubeconfigPath,
      '--once', '--state-dir', stateDir, '--config', config, '--registry', '127.0.0.1:5000',
    ]);
    await watch();
    const runs = async () => JSON.parse((await runKeelson(['runs', '--json', '--state-dir', stateDir])).stdout) as Array<{ phase: string; message?: string; commit: string }>;
    const [limited] = await runs();
    expect(limited).to.include({ phase: 'failed' });
    expect(limited!.message).to.contain('larger than the limit of 16384 bytes (kubernetes.maxSourceBytes)');

    // Raising the limit from the commit is refused, naming the key, and nothing is copied.
    const raised = await commitFile(repo, 'keelson.yaml', 'build:\n  image: team/app\nkubernetes:\n  maxSourceBytes: 999999999\n');
    await watch();
    const refused = (await runs()).find((r) => r.commit === raised);
    expect(refused).to.include({ phase: 'failed' });
    expect(refused!.message).to.match(/line 4: kubernetes\.maxSourceBytes: is operator-only/);
  });

  it('exits 2 naming a --template file that does not exist, before anything runs', async () => {
    const repo = await makeRepo();
    await commitFile(repo, 'Dockerfile', 'FROM scratch\n');
    const stateDir = join(await tempDir('keelson-k8s-cli-'), 'state');
    const result = await runKeelson([
      'watch', `${repo}^main`, '--executor', 'kubernetes', '--kubeconfig', cluster.kubeconfigPath,
      '--once', '--state-dir', stateDir, '--image', 'team/app', '--template', '/nonexistent/builder.yaml',
    ]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.contain('/nonexistent/builder.yaml');
  });
});
