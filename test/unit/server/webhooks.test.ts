import { expect } from 'chai';
import {
  parseGitHubPush, parseRegistryNotification, pushedRepositories, signGitHubBody, verifyGitHubSignature,
} from '../../../src/server/index.js';
import { dockerHubRepository, repositoryOf } from '../../../src/server/webhooks.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const COMMIT = 'c0ffee'.padEnd(40, '0');

// Shapes as the three registries document them, with fields we do not read left in.
const distribution = {
  events: [
    {
      id: 'e1', timestamp: '2026-03-01T10:00:00Z', action: 'push',
      target: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: DIGEST, repository: 'team/app', url: 'http://reg.local:5000/v2/team/app/blobs/x' },
      request: { id: 'r1', addr: '10.0.0.1:1234', host: 'reg.local:5000', method: 'PUT', useragent: 'buildah' },
    },
    {
      id: 'e2', action: 'push',
      target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, repository: 'team/app', tag: '1.2.0', url: 'http://reg.local:5000/v2/team/app/manifests/x' },
      request: { host: 'reg.local:5000' }, actor: {}, source: { addr: 'reg:5000' },
    },
    { id: 'e3', action: 'pull', target: { repository: 'team/other', tag: 'latest' }, request: { host: 'reg.local:5000' } },
  ],
};

const dockerHub = {
  callback_url: 'https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/',
  push_data: { pushed_at: 1417566161, pusher: 'trustedbuilder', tag: 'latest' },
  repository: { name: 'testhook', namespace: 'svendowideit', repo_name: 'svendowideit/testhook', status: 'Active' },
};

const harbor = {
  type: 'PUSH_ARTIFACT', occur_at: 1680501893, operator: 'harbor-jobservice',
  event_data: {
    resources: [{ digest: DIGEST, tag: 'v1', resource_url: 'harbor.example.com/test-webhook/debian:v1' }],
    repository: { date_created: 1680501893, name: 'debian', namespace: 'test-webhook', repo_full_name: 'test-webhook/debian', repo_type: 'private' },
  },
};

describe('registry notifications', () => {
  it('Docker distribution: manifest pushes only, named by request.host', () => {
    const n = parseRegistryNotification(distribution);
    expect(n.format).to.equal('distribution');
    expect(n.pushes).to.deep.equal([{ repository: 'reg.local:5000/team/app', tag: '1.2.0', digest: DIGEST }]);
  });

  it('Docker distribution: a push by digest counts; the host falls back to target.url', () => {
    const n = parseRegistryNotification({ events: [{ action: 'push', target: { mediaType: 'application/vnd.oci.image.index.v1+json', repository: 'a/b', digest: DIGEST, url: 'https://r.example/v2/a/b/manifests/sha256:1' } }] });
    expect(pushedRepositories(n)).to.deep.equal(['r.example/a/b']);
  });

  it('Docker Hub: docker.io plus repo_name', () => {
    const n = parseRegistryNotification(dockerHub);
    expect(n).to.deep.equal({ format: 'dockerhub', pushes: [{ repository: 'docker.io/svendowideit/testhook', tag: 'latest' }] });
  });

  it('Harbor: the repository of each resource_url', () => {
    const n = parseRegistryNotification(harbor);
    expect(n).to.deep.equal({ format: 'harbor', pushes: [{ repository: 'harbor.example.com/test-webhook/debian', tag: 'v1', digest: DIGEST }] });
  });

  it('Harbor: other event types are ignored', () => {
    expect(parseRegistryNotification({ ...harbor, type: 'DELETE_ARTIFACT' }).pushes).to.deep.equal([]);
  });

  it('one repository per delivery however many events name it', () => {
    const twice = { events: [distribution.events[1], { ...distribution.events[1], target: { ...distribution.events[1]!.target, tag: 'latest' } }] };
    expect(pushedRepositories(parseRegistryNotification(twice))).to.deep.equal(['reg.local:5000/team/app']);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['an array', [], /must be a JSON object/],
    ['an unknown shape', { hello: 1 }, /unknown registry notification/],
    ['events not an array', { events: {} }, /Docker distribution notification: events: /],
    ['an event without a repository', { events: [{ action: 'push', target: {} }] }, /events\.0\.target\.repository/],
    ['a push without any host', { events: [{ action: 'push', target: { repository: 'a', tag: 't' } }] }, /neither request\.host nor target\.url/],
    ['Docker Hub without a tag', { push_data: {}, repository: { repo_name: 'a/b' } }, /Docker Hub webhook: push_data\.tag/],
    ['Harbor without resource_url', { type: 'PUSH_ARTIFACT', event_data: { resources: [{ tag: 'x' }] } }, /resources\.0\.resource_url: missing/],
  ];
  for (const [what, body, message] of bad) {
    it(`refuses ${what} with a 400 naming the field`, () => {
      expect(() => parseRegistryNotification(body)).to.throw(message).with.property('status', 400);
    });
  }
});

describe('image repository names', () => {
  const cases: Array<[string, string]> = [
    ['harbor.example.com/ns/app:v1', 'harbor.example.com/ns/app'],
    ['127.0.0.1:5000/team/app:1.0.0', '127.0.0.1:5000/team/app'],
    ['127.0.0.1:5000/team/app', '127.0.0.1:5000/team/app'],
    [`reg:5000/app@${DIGEST}`, 'reg:5000/app'],
    [`reg:5000/app:v1@${DIGEST}`, 'reg:5000/app'],
    ['https://reg.example/app:v1', 'reg.example/app'],
  ];
  for (const [reference, repository] of cases) {
    it(`${reference} → ${repository}`, () => expect(repositoryOf(reference)).to.equal(repository));
  }

  it('official Docker Hub images get library/', () => {
    expect(dockerHubRepository('nginx')).to.equal('docker.io/library/nginx');
    expect(dockerHubRepository('org/app')).to.equal('docker.io/org/app');
  });
});

describe('GitHub signatures', () => {
  const secret = 'webhook-secret-1';
  const body = Buffer.from('{"zen":"Keep it logically awesome."}');

  it('accepts the HMAC-SHA256 of the raw body', () => {
    expect(verifyGitHubSignature(secret, body, signGitHubBody(secret, body))).to.equal(true);
  });

  it('matches the value in GitHub\'s documentation', () => {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    const header = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(verifyGitHubSignature("It's a Secret to Everybody", Buffer.from('Hello, World!'), header)).to.equal(true);
  });

  const refused: Array<[string, string | undefined]> = [
    ['missing', undefined],
    ['empty', ''],
    ['another secret', signGitHubBody('other-secret', body)],
    ['another body', signGitHubBody(secret, `${body.toString()} `)],
    ['sha1', `sha1=${'0'.repeat(40)}`],
    ['short hex', 'sha256=abcd'],
    ['not hex', `sha256=${'z'.repeat(64)}`],
  ];
  for (const [what, header] of refused) {
    it(`refuses a signature that is ${what}`, () => {
      expect(verifyGitHubSignature(secret, body, header)).to.equal(false);
    });
  }
});

describe('GitHub push events', () => {
  const push = {
    ref: 'refs/heads/feature/x', before: '0'.repeat(40), after: COMMIT, deleted: false,
    repository: { clone_url: 'https://github.com/o/r.git', ssh_url: 'git@github.com:o/r.git', html_url: 'https://github.com/o/r', full_name: 'o/r' },
    pusher: { name: 'someone' },
  };

  it('gives every URL of the repository, the branch and the new commit', () => {
    expect(parseGitHubPush(push)).to.deep.equal({
      repoUrls: ['https://github.com/o/r.git', 'git@github.com:o/r.git', 'https://github.com/o/r'], branch: 'feature/x', commit: COMMIT,
    });
  });

  it('ignores tags and deleted branches', () => {
    expect(parseGitHubPush({ ...push, ref: 'refs/tags/v1' })).to.equal(undefined);
    expect(parseGitHubPush({ ...push, deleted: true, after: '0'.repeat(40) })).to.equal(undefined);
  });

  it('refuses a body that is not a push', () => {
    expect(() => parseGitHubPush({ ...push, after: 'HEAD' })).to.throw(/GitHub push event: after: expected a full commit id/);
    expect(() => parseGitHubPush({ ...push, repository: {} })).to.throw(/no clone_url/);
  });
});
