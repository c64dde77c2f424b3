import { expect } from 'chai';
import { parsePolicy } from '../../../src/policy/index.js';
import { computeTargets } from '../../../src/rollout/index.js';
import { decideContainer, digestOfImageId, runningDigests, splitImage, type DecideInput } from '../../../src/rollout/plan.js';
import type { RolloutRecord } from '../../../src/rollout/index.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const REPO = '127.0.0.1:5000/team/app';

function input(image: string, policy: string, update: DecideInput['update'], over: Partial<DecideInput> = {}): DecideInput {
  return {
    image: splitImage('app', false, image)!,
    settings: { policy: parsePolicy(policy), matchTag: false, matchPreRelease: true, pinDigest: false },
    update,
    running: new Set(),
    ...over,
  };
}

const record = (image: string, digest?: string): RolloutRecord => ({ containers: { app: { image, ...(digest ? { digest } : {}), at: 'x' } }, lastChanges: [], updatedAt: 'x' });

describe('rollout decisions', () => {
  it('splits images keeping the user spelling', () => {
    expect(splitImage('c', false, 'nginx:1.2')).to.include({ name: 'nginx', repository: 'docker.io/library/nginx', tag: '1.2' });
    expect(splitImage('c', false, `${REPO}:main@${D1}`)).to.include({ name: REPO, repository: REPO, tag: 'main', digest: D1 });
    expect(splitImage('c', false, 'localhost:5000/app')).to.include({ name: 'localhost:5000/app', tag: 'latest' });
    expect(splitImage('c', false, 'NOT VALID')).to.equal(undefined);
  });

  it('reads digests from imageIDs and pinned status images', () => {
    expect(digestOfImageId(`docker-pullable://${REPO}@${D1}`)).to.equal(D1);
    expect(digestOfImageId(D2)).to.equal(D2);
    expect(digestOfImageId('')).to.equal(undefined);
    const pods = [
      { status: { containerStatuses: [{ name: 'app', image: `${REPO}:1`, imageID: `${REPO}@${D1}`, ready: true, restartCount: 0 }] } },
      { status: { containerStatuses: [{ name: 'app', image: `${REPO}:1@${D2}`, imageID: '', ready: true, restartCount: 0 }] } },
    ];
    expect([...runningDigests(pods as never).get('app')!].sort()).to.deep.equal([D1, D2]);
  });

  const cases: Array<{ name: string; input: DecideInput; want: unknown }> = [
    {
      name: 'semver: a newer minor rolls to the new tag',
      input: input(`${REPO}:1.0.0`, 'minor', { repository: REPO, tag: '1.1.0', digest: D2 }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:1.0.0`, to: `${REPO}:1.1.0`, digest: D2 } },
    },
    {
      name: 'semver: a major is refused by minor',
      input: input(`${REPO}:1.0.0`, 'minor', { repository: REPO, tag: '2.0.0' }),
      want: { kind: 'skip', reason: 'NoCandidate' },
    },
    {
      name: 'semver: picks from the listed tags',
      input: input(`${REPO}:1.0.0`, 'patch', { repository: REPO, tag: '1.0.3', tags: ['1.0.1', '1.0.3', '1.1.0'] }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:1.0.0`, to: `${REPO}:1.0.3` } },
    },
    {
      name: 'pinning: tag@digest',
      input: input(`${REPO}:1.0.0`, 'minor', { repository: REPO, tag: '1.1.0', digest: D2 }, { settings: { policy: parsePolicy('minor'), matchTag: false, matchPreRelease: true, pinDigest: true } }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:1.0.0`, to: `${REPO}:1.1.0@${D2}`, digest: D2 } },
    },
    {
      name: 'another repository is not ours',
      input: input(`${REPO}:1.0.0`, 'all', { repository: '127.0.0.1:5000/team/other', tag: '9.0.0' }),
      want: { kind: 'skip', reason: 'OtherImage' },
    },
    {
      name: 'a restart: the spec already has the tag',
      input: input(`${REPO}:1.1.0`, 'minor', { repository: REPO, tag: '1.1.0' }),
      want: { kind: 'skip', reason: 'NoCandidate' },
    },
    {
      name: 'a human reverted what we applied: not applied again',
      input: input(`${REPO}:1.0.0`, 'minor', { repository: REPO, tag: '1.1.0' }, { record: record(`${REPO}:1.1.0`) }),
      want: { kind: 'skip', reason: 'AlreadyApplied' },
    },
    {
      name: 'force: pods run the pushed digest already (restart of keelson rolls nothing)',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D1 }, { running: new Set([D1]) }),
      want: { kind: 'skip', reason: 'UpToDate' },
    },
    {
      name: 'force: pods run an older digest (pushed while keelson was down) rolls, naming the digest it ran',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D2 }, { running: new Set([D1]), image: splitImage('app', false, `${REPO}:main`, 'Always')! }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:main`, to: `${REPO}:main`, digest: D2, fromDigest: D1 } },
    },
    {
      name: 'force: a container that keeps its node copy (IfNotPresent) is rolled to tag@digest, or its pods restart on the old image',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D2 }, { running: new Set([D1]), image: splitImage('app', false, `${REPO}:main`, 'IfNotPresent')! }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:main`, to: `${REPO}:main@${D2}`, digest: D2, fromDigest: D1 } },
    },
    {
      name: 'force: no pull policy in the spec is IfNotPresent for a named tag, as Kubernetes defaults it',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D2 }, { running: new Set([D1]) }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:main`, to: `${REPO}:main@${D2}`, digest: D2, fromDigest: D1 } },
    },
    {
      name: 'force: no pull policy in the spec is Always for latest, so the tag stays as written',
      input: input(`${REPO}:latest`, 'force', { repository: REPO, tag: 'latest', digest: D2 }, { running: new Set([D1]) }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:latest`, to: `${REPO}:latest`, digest: D2, fromDigest: D1 } },
    },
    {
      name: 'force: a pinned spec is the baseline and stays pinned',
      input: input(`${REPO}:main@${D1}`, 'force', { repository: REPO, tag: 'main', digest: D2 }),
      want: { kind: 'change', change: { container: 'app', init: false, from: `${REPO}:main@${D1}`, to: `${REPO}:main@${D2}`, digest: D2, fromDigest: D1 } },
    },
    {
      name: 'force: already applied this digest (pods not caught up yet)',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D2 }, { running: new Set([D1]), record: record(`${REPO}:main`, D2) }),
      want: { kind: 'skip', reason: 'AlreadyApplied' },
    },
    {
      name: 'force: nothing known about what runs: adopt the digest',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main', digest: D2 }),
      want: { kind: 'adopt', digest: D2 },
    },
    {
      name: 'force: no digest in the update, nothing to compare',
      input: input(`${REPO}:main`, 'force', { repository: REPO, tag: 'main' }, { running: new Set([D1]) }),
      want: { kind: 'skip', reason: 'NoCandidate' },
    },
    {
      name: 'never',
      input: input(`${REPO}:1.0.0`, 'never', { repository: REPO, tag: '1.1.0' }),
      want: { kind: 'skip', reason: 'NoCandidate' },
    },
  ];
  for (const c of cases) it(c.name, () => expect(decideContainer(c.input)).to.deep.equal(c.want));

  describe('registry targets', () => {
    const settings = (policy: string, trigger: 'poll' | 'default', pollSchedule = '@every 1m') => ({ policy: parsePolicy(policy), trigger, pollSchedule, matchTag: false, matchPreRelease: true });
    const images = (...refs: string[]) => refs.map((r) => splitImage('app', false, r)!);

    it('one target per distinct image, whatever the number of workloads', () => {
      const sources = Array.from({ length: 50 }, (_, i) => ({ key: `ns/deployment/w${String(i).padStart(2, '0')}`, settings: settings('force', 'poll'), images: images(`${REPO}:main`) }));
      sources.push({ key: 'ns/deployment/x', settings: settings('minor', 'poll', '@every 10s'), images: images(`${REPO}:1.0.0`, 'nginx:1.25') });
      const targets = computeTargets(sources);
      expect(targets.map((t) => [t.repository, t.tag, t.mode, t.schedule])).to.deep.equal([
        [REPO, '1.0.0', 'tags', '@every 10s'],
        [REPO, 'main', 'digest', '@every 1m'],
        ['docker.io/library/nginx', '1.25', 'tags', '@every 10s'],
      ]);
      expect(targets[1]!.workloads).to.have.length(50);
    });

    it('the most frequent schedule wins, default-trigger and never workloads are not polled', () => {
      const targets = computeTargets([
        { key: 'a', settings: settings('force', 'poll', '@every 5m'), images: images(`${REPO}:main`) },
        { key: 'b', settings: settings('force', 'poll', '@every 30s'), images: images(`${REPO}:main`) },
        { key: 'c', settings: settings('force', 'default'), images: images(`${REPO}:dev`) },
        { key: 'd', settings: settings('never', 'poll'), images: images(`${REPO}:stable`) },
      ]);
      expect(targets).to.have.length(1);
      expect(targets[0]).to.include({ tag: 'main', schedule: '@every 30s' });
    });

    it('carries the pinned digest only when every workload agrees', () => {
      const pinned = computeTargets([{ key: 'a', settings: settings('force', 'poll'), images: images(`${REPO}:main@${D1}`) }]);
      expect(pinned[0]!.digest).to.equal(D1);
      const mixed = computeTargets([
        { key: 'a', settings: settings('force', 'poll'), images: images(`${REPO}:main@${D1}`) },
        { key: 'b', settings: settings('force', 'poll'), images: images(`${REPO}:main`) },
      ]);
      expect(mixed[0]!.digest).to.equal(undefined);
    });
  });
});
