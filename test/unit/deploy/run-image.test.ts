import { expect } from 'chai';
import { isDigestReference, planContainerRemoval, planImageRun, type RunImageOptions } from '../../../src/deploy/index.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('planImageRun', () => {
  const base: RunImageOptions = {
    image: `127.0.0.1:5000/team/app@${DIGEST}`,
    command: ['/ci.sh', '--fast'],
    name: 'keelson-deploy-r1',
    log: () => {},
    signal: new AbortController().signal,
  };

  const cases: Array<{ name: string; options: Partial<RunImageOptions>; dockerConfigDir?: string; expected: Array<[string, string[]]> }> = [
    {
      name: 'buildah by digest: from, run, rm',
      options: {},
      expected: [
        ['pull', ['from', '--name', 'keelson-deploy-r1', `127.0.0.1:5000/team/app@${DIGEST}`]],
        ['run', ['run', 'keelson-deploy-r1', '--', '/ci.sh', '--fast']],
        ['cleanup', ['rm', 'keelson-deploy-r1']],
      ],
    },
    {
      name: 'buildah by tag always pulls, plain HTTP and an auth file',
      options: { image: '127.0.0.1:5000/team/app:main', insecure: true, authFile: '/run/auth.json', containerEnv: { KEELSON_RUN_ID: 'r1' } },
      expected: [
        ['pull', ['from', '--name', 'keelson-deploy-r1', '--pull=always', '--tls-verify=false', '--authfile', '/run/auth.json', '127.0.0.1:5000/team/app:main']],
        ['run', ['run', '--env', 'KEELSON_RUN_ID=r1', 'keelson-deploy-r1', '--', '/ci.sh', '--fast']],
        ['cleanup', ['rm', 'keelson-deploy-r1']],
      ],
    },
    {
      name: 'podman run --rm in one command',
      options: { tool: 'podman', insecure: true, authFile: '/run/auth.json', containerEnv: { A: 'b' } },
      expected: [
        ['run', ['run', '--rm', '--name', 'keelson-deploy-r1', '--tls-verify=false', '--authfile', '/run/auth.json', '--env', 'A=b',
          `127.0.0.1:5000/team/app@${DIGEST}`, '/ci.sh', '--fast']],
      ],
    },
    {
      name: 'docker reads credentials from a config dir and has no --tls-verify',
      options: { tool: 'docker', insecure: true, authFile: '/run/auth.json', image: 'registry.example/app:1' },
      dockerConfigDir: '/tmp/cfg',
      expected: [
        ['run', ['--config', '/tmp/cfg', 'run', '--rm', '--name', 'keelson-deploy-r1', '--pull=always', 'registry.example/app:1', '/ci.sh', '--fast']],
      ],
    },
  ];
  for (const { name, options, dockerConfigDir, expected } of cases) {
    it(name, () => {
      const plan = planImageRun({ ...base, ...options }, dockerConfigDir);
      expect(plan.map((step) => [step.stage, step.args])).to.deep.equal(expected);
    });
  }

  it('never puts a credential on a command line, only the file that holds it', () => {
    for (const tool of ['buildah', 'podman', 'docker'] as const) {
      const args = planImageRun({ ...base, tool, authFile: '/run/auth.json' }, '/tmp/cfg').flatMap((step) => step.args);
      expect(args.some((arg) => arg.startsWith('--creds')), tool).to.equal(false);
    }
  });
});

describe('planContainerRemoval', () => {
  it('removes a buildah working container, and forces out a podman/docker one whose client died while it ran', () => {
    expect(planContainerRemoval('buildah', 'keelson-deploy-1')).to.deep.equal(['rm', 'keelson-deploy-1']);
    expect(planContainerRemoval('podman', 'keelson-deploy-1')).to.deep.equal(['rm', '--force', 'keelson-deploy-1']);
    expect(planContainerRemoval('docker', 'keelson-deploy-1')).to.deep.equal(['rm', '--force', 'keelson-deploy-1']);
  });
});

describe('isDigestReference', () => {
  const cases: Array<[string, boolean]> = [
    [`127.0.0.1:5000/team/app@${DIGEST}`, true],
    ['127.0.0.1:5000/team/app:main', false],
    ['team/app@sha256:short', false],
    ['localhost:5000/app', false],
  ];
  for (const [image, expected] of cases) {
    it(`${image.slice(0, 40)} → ${expected}`, () => expect(isDigestReference(image)).to.equal(expected));
  }
});
