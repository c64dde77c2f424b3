import { expect } from 'chai';
import { InputError } from '../../../src/errors.js';
import { formatImageReference, isLoopbackHost, parseImageReference } from '../../../src/registry/index.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseImageReference (docker normalisation)', () => {
  const cases: [string, { registry: string; repository: string; tag?: string; digest?: string }][] = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.27', { registry: 'docker.io', repository: 'library/nginx', tag: '1.27' }],
    ['bitnami/redis:7', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['index.docker.io/library/nginx:latest', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/team/app:v1', { registry: 'localhost:5000', repository: 'team/app', tag: 'v1' }],
    ['127.0.0.1:5000/team/app:1.0.0', { registry: '127.0.0.1:5000', repository: 'team/app', tag: '1.0.0' }],
    ['ghcr.io/org/sub/app', { registry: 'ghcr.io', repository: 'org/sub/app' }],
    [`ghcr.io/org/app@${DIGEST}`, { registry: 'ghcr.io', repository: 'org/app', digest: DIGEST }],
    [`ghcr.io/org/app:1.2@${DIGEST}`, { registry: 'ghcr.io', repository: 'org/app', tag: '1.2', digest: DIGEST }],
    ['[::1]:5000/app', { registry: '[::1]:5000', repository: 'app' }],
    ['my_team/app-name.x:2.0.0-rc.1', { registry: 'docker.io', repository: 'my_team/app-name.x', tag: '2.0.0-rc.1' }],
  ];
  for (const [text, expected] of cases) {
    it(`parses ${text}`, () => {
      expect(parseImageReference(text)).to.deep.equal(expected);
    });
  }

  const bad: [string, string][] = [
    ['', 'without spaces'],
    [' nginx', 'without spaces'],
    ['Nginx', 'lowercase'],
    ['nginx:', 'tag ""'],
    ['nginx:-bad', 'tag "-bad"'],
    ['nginx@sha256:xyz', 'digest'],
    ['host:5000/', 'missing repository'],
    ['team//app', 'path component ""'],
    ['bad_host!:5000/app', 'registry host'],
  ];
  for (const [text, fragment] of bad) {
    it(`refuses ${JSON.stringify(text)} with an InputError naming it`, () => {
      expect(() => parseImageReference(text)).to.throw(InputError, fragment).with.property('message').that.includes(`"${text}"`);
    });
  }

  it('formats back to the full form', () => {
    expect(formatImageReference(parseImageReference('nginx:1'))).to.equal('docker.io/library/nginx:1');
    expect(formatImageReference(parseImageReference(`127.0.0.1:5000/a/b:t@${DIGEST}`))).to.equal(`127.0.0.1:5000/a/b:t@${DIGEST}`);
  });
});

describe('isLoopbackHost', () => {
  for (const host of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.3.2.1:80', '[::1]:5000', '::1', 'LOCALHOST']) {
    it(`treats ${host} as loopback`, () => expect(isLoopbackHost(host)).to.equal(true));
  }
  for (const host of ['registry.example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io:5000', '[::2]:5000']) {
    it(`does not treat ${host} as loopback`, () => expect(isLoopbackHost(host)).to.equal(false));
  }
});
