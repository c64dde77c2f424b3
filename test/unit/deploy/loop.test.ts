import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { PipelineSpec } from '../../../src/config/index.js';
import { deployTags, LocalDeployLoop, type LocalDeployLoopOptions } from '../../../src/deploy/index.js';
import { InputError } from '../../../src/errors.js';
import { RegistryClient } from '../../../src/registry/index.js';
import { FileStore, type Store } from '../../../src/store/index.js';

describe('deployTags', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['the branch tag of the default tags', { image: 'team/app' }, ['feature-x']],
    ['fixed tags and the branch, never commit tags', { image: 'team/app', tags: ['latest', 'v1-{{ commit }}', '{{branch}}-dev'] }, ['latest', 'feature-x-dev']],
    ['nothing when every tag names the commit', { image: 'team/app', tags: ['{{shortCommit}}'] }, []],
    ['the branch without a build', undefined, ['feature-x']],
  ];
  for (const [name, build, expected] of cases) {
    it(name, () => {
      const pipeline = PipelineSpec.parse({ ...(build ? { build } : {}), deploy: { command: ['/ci.sh'], image: 'team/app' } });
      expect(deployTags(pipeline, 'feature/x')).to.deep.equal(expected);
    });
  }
});

type Overrides = Omit<Partial<LocalDeployLoopOptions>, 'pipeline'> & { pipeline?: unknown };

describe('LocalDeployLoop options', () => {
  let dir: string;
  let store: Store;
  const reader = new RegistryClient();
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keelson-deploy-unit-'));
    store = await FileStore.open({ stateDir: dir });
  });
  after(async () => {
    await reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const options = (overrides: Overrides = {}): LocalDeployLoopOptions => ({
    store,
    registryReader: reader,
    registry: '127.0.0.1:5000',
    tags: ['main'],
    ...overrides,
    pipeline: PipelineSpec.parse(overrides.pipeline ?? { build: { image: 'team/app' }, deploy: { command: ['/ci.sh'] } }),
  });

  const rejected: Array<[string, Overrides, string]> = [
    ['a pipeline without deploy:', { pipeline: { build: { image: 'team/app' } } }, 'pipeline.deploy:'],
    ['a deploy without an image', { pipeline: { deploy: { command: ['/ci.sh'] } } }, 'pipeline.deploy.image:'],
    ['a registry that is not host[:port]', { registry: 'http://127.0.0.1:5000' }, 'registry:'],
    ['no tag to follow', { tags: [] }, 'deploy tags:'],
    ['a tag that is not a tag', { tags: ['bad tag'] }, 'current tag "bad tag"'],
  ];
  for (const [name, overrides, message] of rejected) {
    it(`rejects ${name} with an InputError`, () => {
      let caught: unknown;
      try {
        new LocalDeployLoop(options(overrides));
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(InputError);
      expect((caught as InputError).exitCode).to.equal(2);
      expect((caught as Error).message).to.include(message);
    });
  }

  it('rejects an unknown option, naming the known ones', () => {
    expect(() => new LocalDeployLoop({ ...options(), image: 'x' } as LocalDeployLoopOptions)).to.throw(TypeError, /unknown option "image".*registryReader/);
  });

  it('runs deploy.image from the registry, or as named when it names its own host', () => {
    const relative = new LocalDeployLoop(options({ pipeline: { build: { image: 'team/app' }, deploy: { command: ['/ci.sh'], image: 'team/tests' } } }));
    expect(relative.repository).to.equal('127.0.0.1:5000/team/tests');
    const absolute = new LocalDeployLoop(options({ pipeline: { deploy: { command: ['/ci.sh'], image: 'localhost:5001/tests' } } }));
    expect(absolute.repository).to.equal('localhost:5001/tests');
    expect(absolute.status().map((job) => job.key)).to.deep.equal(['localhost:5001/tests:main']);
  });

  it('follows each tag with one digest-mode job', () => {
    const loop = new LocalDeployLoop(options({ tags: ['main', 'latest'], schedule: '@every 5s' }));
    expect(loop.status().map((job) => [job.key, job.mode, job.schedule])).to.deep.equal([
      ['127.0.0.1:5000/team/app:main', 'digest', '@every 5s'],
      ['127.0.0.1:5000/team/app:latest', 'digest', '@every 5s'],
    ]);
  });
});
