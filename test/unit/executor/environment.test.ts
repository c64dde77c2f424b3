import { expect } from 'chai';
import { stepEnvironment, toolEnvironment } from '../../../src/executor/index.js';

describe('environments of steps and builders', () => {
  const daemon: NodeJS.ProcessEnv = {
    PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', TZ: 'UTC',
    GITHUB_TOKEN: 'ghp_operator', AWS_SECRET_ACCESS_KEY: 'aws', NPM_TOKEN: 'npm-token',
    BUILDAH_ISOLATION: 'chroot', CONTAINERS_STORAGE_CONF: '/etc/storage.conf', DOCKER_HOST: 'unix:///run/docker.sock',
  };

  it('gives a step the base, the passed names, the pipeline env and the run values, nothing else', () => {
    const env = stepEnvironment({ env: daemon, passEnv: ['NPM_TOKEN', 'NOT_SET'] }, { GOFLAGS: '-mod=mod', KEELSON_RUN_ID: 'forged' }, { KEELSON_RUN_ID: 'run-1' });
    expect(env).to.deep.equal({
      PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', TZ: 'UTC', NPM_TOKEN: 'npm-token', GOFLAGS: '-mod=mod', KEELSON_RUN_ID: 'run-1',
    });
  });

  it('gives a builder tool its own configuration but never the operator tokens or the pipeline env', () => {
    const env = toolEnvironment({ env: daemon });
    expect(env).to.include({ BUILDAH_ISOLATION: 'chroot', CONTAINERS_STORAGE_CONF: '/etc/storage.conf', DOCKER_HOST: 'unix:///run/docker.sock', PATH: '/usr/bin' });
    expect(env).not.to.have.any.keys('GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'NPM_TOKEN');
  });
});
