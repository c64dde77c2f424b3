import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { parseRepositoryPipeline, PipelineSpec } from '../../../src/config/index.js';
import { deployTags, LocalDeployLoop } from '../../../src/deploy/index.js';
import { LocalExecutor } from '../../../src/executor/index.js';
import { materializeCommit, parseWatchSpec, type WatchSpec } from '../../../src/git/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { PipelineRunner, type PipelineEvent } from '../../../src/pipeline/index.js';
import { RegistryClient } from '../../../src/registry/index.js';
import { FileStore, type RunRecord, type Store } from '../../../src/store/index.js';
import { cleanupRepos, git, makeRepo } from '../../support/git.js';
import { baseImageDir, buildahInvocation } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/** What the repository commits: how to build. */
const PIPELINE = `
build:
  image: loop/app
  dockerfile: Containerfile
  tags: ['{{branch}}', '{{shortCommit}}']
`;

/** The operator's pipeline for the same image: deploy runs the image here, so only the operator may ask for it. */
const OPERATOR_DEPLOY = {
  command: ['/bin/busybox', 'sh', '-c', 'cat /message.txt; echo; echo deployed $KEELSON_COMMIT'],
};

/**
 * On a laptop with no cluster: commit → build → push → new digest seen → the deploy command
 * runs in the new image, each step a run in the store with its log.
 */
describe('the local loop from a commit to a deploy run', function () {
  this.timeout(300_000);
  let registry: RunningRegistry | undefined;
  let stateDir: string | undefined;
  let store: Store | undefined;
  let client: RegistryClient | undefined;
  let loop: LocalDeployLoop | undefined;
  let repo: string;
  let spec: WatchSpec;
  let first = '';

  before(async () => {
    registry = await startRegistry();
    stateDir = await mkdtemp(join(tmpdir(), 'keelson-local-loop-'));
    store = await FileStore.open({ stateDir: join(stateDir, 'state') });
    client = new RegistryClient();
    repo = await makeRepo();
    const base = baseImageDir();
    await copyFile(join(base, 'busybox'), join(repo, 'busybox'));
    const containerfile = await readFile(join(base, 'Containerfile'), 'utf8');
    await writeFile(join(repo, 'Containerfile'), `${containerfile}COPY message.txt /message.txt\n`);
    await writeFile(join(repo, 'keelson.yaml'), PIPELINE);
    spec = parseWatchSpec(`${repo}^main`);
  });
  after(async () => {
    await loop?.stop();
    await store?.close();
    await client?.close();
    await registry?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await cleanupRepos();
  });

  async function commit(message: string): Promise<string> {
    await writeFile(join(repo, 'message.txt'), message);
    await git(repo, 'add', '--', '.');
    await git(repo, 'commit', '--quiet', '-m', message);
    return git(repo, 'rev-parse', 'HEAD');
  }

  function runner(onRunFinished: (run: RunRecord) => void): PipelineRunner {
    return new PipelineRunner({
      store: store!,
      // The env alone points buildah at the test store (CONTAINERS_STORAGE_CONF) and chroot isolation.
      executor: new LocalExecutor({ env: buildahInvocation().env }),
      materializer: {
        materialize: async (watch, sha, destDir, signal) => {
          await materializeCommit(watch as WatchSpec, sha, destDir, { cacheDir: join(stateDir!, 'mirrors'), signal });
        },
      },
      registry: registry!.host,
      workspaceDir: join(stateDir!, 'workspaces'),
      logger: silentLogger(),
      onRunFinished,
    });
  }

  function event(sha: string): PipelineEvent {
    return { watch: spec, branch: 'main', commit: sha, skipped: [] };
  }

  it('builds and pushes the commit, sees the new digest and runs the deploy command in that image', async () => {
    first = await commit('first message');
    // The deploy loop follows the branch tag of the repository's own pipeline.
    parseRepositoryPipeline(PIPELINE, 'keelson.yaml'); // what the run reads from the commit is valid
    const pipeline = PipelineSpec.parse({ ...(parseYaml(PIPELINE) as object), deploy: OPERATOR_DEPLOY });
    expect(deployTags(pipeline, 'main')).to.deep.equal(['main']);
    loop = new LocalDeployLoop({
      store: store!, registryReader: client!, pipeline, registry: registry!.host, tags: deployTags(pipeline, 'main'),
      watchKey: spec.key, env: buildahInvocation().env, logger: silentLogger(),
    });

    const deploys: Array<ReturnType<LocalDeployLoop['recordBuild']>> = [];
    const outcome = await runner((run) => deploys.push(loop!.recordBuild(run))).trigger(event(first), new AbortController().signal);
    expect(outcome.ok).to.equal(true);
    const build = (await store!.getRun(outcome.runId!))!;
    expect(build).to.include({ kind: 'build', phase: 'succeeded', commit: first });
    expect(build.image?.digest).to.match(/^sha256:[a-f0-9]{64}$/);
    expect(build.image?.pushed).to.equal(true);
    expect(await client!.manifestDigest(`${registry!.host}/loop/app`, 'main')).to.equal(build.image!.digest);

    expect(deploys).to.have.length(1);
    const { runs } = await deploys[0]!;
    expect(runs).to.have.length(1);
    const deploy = runs[0]!;
    expect(deploy).to.include({ kind: 'deploy', phase: 'succeeded', watch: spec.key, commit: first, branch: 'main' });
    expect(deploy.image).to.deep.equal({ ref: `${registry!.host}/loop/app:main`, digest: build.image!.digest, pushed: true });
    const { text } = await store!.readLog(deploy.id);
    expect(text).to.include('first message').and.include(`deployed ${first}`);

    const listed = await store!.listRuns({ watch: spec.key });
    expect(listed.map((run) => [run.kind, run.phase, run.commit])).to.deep.equal([
      ['deploy', 'succeeded', first],
      ['build', 'succeeded', first],
    ]);
  });

  it('deploys the next commit when the registry watcher sees its digest, once', async () => {
    const second = await commit('second message');
    const outcome = await runner(() => {}).trigger(event(second), new AbortController().signal);
    expect(outcome.ok).to.equal(true);
    const build = (await store!.getRun(outcome.runId!))!;

    // No recordBuild this time: the watcher's change and the watch's newest build run suffice.
    const { runs } = await loop!.checkNow();
    expect(runs.map((run) => [run.kind, run.phase, run.commit, run.image?.digest])).to.deep.equal([
      ['deploy', 'succeeded', second, build.image?.digest],
    ]);
    expect((await store!.readLog(runs[0]!.id)).text).to.include('second message');
    expect((await loop!.checkNow()).runs, 'seen again').to.deep.equal([]);

    const listed = await store!.listRuns({ watch: spec.key });
    expect(listed.map((run) => [run.kind, run.commit])).to.deep.equal([['deploy', second], ['build', second], ['deploy', first], ['build', first]]);
  });
});
