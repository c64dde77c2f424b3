import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import { PipelineSpec } from '../../../src/config/pipeline.js';
import { parseRunId } from '../../../src/domain/index.js';
import { builderValues, claimProblem, podProblem, registrySecret, reportedDigest } from '../../../src/executor/kubernetes/index.js';
import { anonymousCredentials, parseRegistryConfig, type CredentialLookup } from '../../../src/registry/index.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function pod(status: V1Pod['status'], name = 'build-x'): V1Pod {
  return { metadata: { name }, spec: { nodeName: 'node-1', containers: [{ name: 'kaniko' }] }, status };
}

function waiting(reason: string, message = 'details'): V1Pod {
  return pod({ phase: 'Pending', containerStatuses: [{ name: 'kaniko', image: 'gcr.io/kaniko:v1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }] });
}

describe('kubernetes pod status', () => {
  const stuck: Array<[string, V1Pod, string | undefined]> = [
    ['ImagePullBackOff', waiting('ImagePullBackOff', 'Back-off pulling image'), 'ImagePullBackOff: Back-off pulling image (image gcr.io/kaniko:v1); check the image name'],
    ['InvalidImageName', waiting('InvalidImageName'), 'InvalidImageName'],
    ['CreateContainerConfigError', waiting('CreateContainerConfigError', 'secret "x" not found'), 'secret "x" not found'],
    ['a first ErrImagePull (the kubelet retries it)', waiting('ErrImagePull'), undefined],
    ['ContainerCreating', waiting('ContainerCreating'), undefined],
    ['a running pod', pod({ phase: 'Running' }), undefined],
    ['an evicted pod', pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' }), 'was evicted from node node-1: The node was low on resource: ephemeral-storage.'],
    ['a pod stopped by the eviction API', pod({ phase: 'Failed', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }] }), 'EvictionByEvictionAPI'],
    ['a pod that simply failed', pod({ phase: 'Failed', containerStatuses: [] }), undefined],
  ];
  for (const [what, input, expected] of stuck) {
    it(`podProblem: ${what}`, () => {
      const problem = podProblem(input);
      if (expected === undefined) expect(problem).to.equal(undefined);
      else expect(problem).to.contain(expected);
    });
  }

  it('claimProblem names the storage class and the fix for an unbound claim', () => {
    const message = claimProblem({ metadata: { name: 'source' }, spec: { storageClassName: 'slow' }, status: { phase: 'Pending' } }, 5200);
    expect(message).to.contain('source volume claim source was still Pending after 5s (storage class slow)');
    expect(message).to.contain('kubernetes.storageClass');
    expect(claimProblem({ status: { phase: 'Bound' } }, 1)).to.equal(undefined);
  });

  const digests: Array<[string, V1Pod[], string, string | undefined]> = [
    ['the termination message', [pod({ phase: 'Succeeded', containerStatuses: [{ name: 'kaniko', image: 'k', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message: `${DIGEST}\n` } } }] })], '', DIGEST],
    ['a kaniko log line', [], `INFO[0003] Pushing image to reg:5000/team/app:main\nINFO[0004] Pushed reg:5000/team/app@${DIGEST}\n`, DIGEST],
    ['no line for this repository', [], `Pushed reg:5000/team/other@${DIGEST}\n`, undefined],
    ['a repository that only shares a suffix', [], `Pushed reg:5000/x-team/app@${DIGEST}\n`, undefined],
    ['nothing reported', [], 'built\n', undefined],
  ];
  for (const [what, pods, log, expected] of digests) {
    it(`reportedDigest from ${what}`, () => {
      expect(reportedDigest(pods, log, 'reg:5000/team/app')).to.equal(expected);
    });
  }
});

describe('kubernetes builder values and registry Secret', () => {
  const credentials = parseRegistryConfig([
    '"reg.test:5000":',
    '  ".*":',
    '    security:',
    '      tls: { client: { disabled: true } }',
    '      basic: { username: robot, password: s3cret-pw }',
  ].join('\n'), 'registry.yaml');

  function values(build: object, registry = 'reg.test:5000', lookup: CredentialLookup = credentials) {
    const pipeline = PipelineSpec.parse({ build: { image: 'team/app', ...build }, kubernetes: { redisCacheAddr: 'keelson-redis.keelson:6379' } });
    return builderValues({
      request: {
        runId: parseRunId('20260102-030405-a1b2c3'),
        source: { dir: '/src', repo: 'https://git.test/team/app.git', branch: 'main', commit: 'c'.repeat(40) },
        pipeline, registry, log: () => undefined, signal: new AbortController().signal,
      },
      namespace: 'keelson-app-main-x',
      images: [`${registry}/team/app:main`, `${registry}/team/app:cccccccccccc`],
      credentials: lookup,
    });
  }

  it('gives the stencil values and the builder values', () => {
    const v = values({ cacheRepo: 'team/app-cache', args: { VERSION: '1.2' } });
    expect(v).to.deep.include({
      Image: 'reg.test:5000/team/app:main', ImagePath: 'team/app:main', Registry: 'reg.test:5000', Namespace: 'keelson-app-main-x',
      ID: '20260102-030405-a1b2c3', Commit: 'c'.repeat(40), Branch: 'main', CacheRepo: 'reg.test:5000/team/app-cache',
      RedisCacheAddr: 'keelson-redis.keelson:6379', RegistryInsecure: true, RegistrySecret: 'registry-auth', BuildArgs: ['VERSION=1.2'],
    });
    expect(v.duat).to.deep.include({ gitBranch: 'main', gitHash: 'c'.repeat(40) });
    expect(JSON.stringify(v)).not.to.contain('s3cret-pw');
  });

  it('keeps a cache repository on its own registry and leaves it empty when none is set', () => {
    expect(values({ cacheRepo: 'cache.test:443/team/cache' }).CacheRepo).to.equal('cache.test:443/team/cache');
    expect(values({}).CacheRepo).to.equal('');
    expect(values({}, 'other.test', anonymousCredentials).RegistryInsecure).to.equal(false);
  });

  it('puts the credentials in the Secret as a docker config and a Makisu registry config', () => {
    const secret = registrySecret(credentials, { a: 'b' }, 'reg.test:5000');
    const docker = JSON.parse(secret.stringData!['config.json']!) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(docker.auths['reg.test:5000']!.auth, 'base64').toString()).to.equal('robot:s3cret-pw');
    const makisu = JSON.parse(secret.stringData!['makisu.json']!) as Record<string, Record<string, { security: unknown }>>;
    expect(makisu['reg.test:5000']!['.*']!.security).to.deep.equal({ tls: { client: { disabled: true } }, basic: { username: 'robot', password: 's3cret-pw' } });
    expect(JSON.parse(registrySecret(anonymousCredentials, {}, undefined).stringData!['config.json']!)).to.deep.equal({ auths: {} });
  });
});
