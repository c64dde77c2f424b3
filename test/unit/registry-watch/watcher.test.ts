import { expect } from 'chai';
import { Duration } from '../../../src/domain/index.js';
import { PassThrough } from 'node:stream';
import { InputError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log/index.js';
import { parsePolicy } from '../../../src/policy/index.js';
import { RegistryWatcher, immediateJitter, parseSchedule, type RegistryChange, type RegistryReader, type WatchTarget } from '../../../src/registry-watch/index.js';
import { SLOT_STEP_MS, stableJitter } from '../../../src/registry-watch/watcher.js';
import type { StateStore } from '../../../src/store/types.js';

/** The seam the watcher reads through, serving data from memory and counting requests. */
class MemoryReader implements RegistryReader {
  readonly tags = new Map<string, string[]>();
  readonly digests = new Map<string, string>();
  readonly failing = new Map<string, Error>();
  readonly requests: string[] = [];

  async listTags(repository: string, _options?: { readonly signal?: AbortSignal }): Promise<string[]> {
    this.requests.push(`tags ${repository}`);
    const failure = this.failing.get(repository);
    if (failure) throw failure;
    return [...(this.tags.get(repository) ?? [])];
  }

  async manifestDigest(repository: string, reference: string, _options?: { readonly signal?: AbortSignal }): Promise<string> {
    this.requests.push(`head ${repository}:${reference}`);
    const failure = this.failing.get(repository);
    if (failure) throw failure;
    const digest = this.digests.get(`${repository}:${reference}`);
    if (!digest) throw new Error(`${repository}:${reference}: manifest unknown`);
    return digest;
  }
}

class MapState implements StateStore {
  readonly values = new Map<string, string>();
  async getState<T>(key: string): Promise<T | undefined> {
    const v = this.values.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  async setState<T>(key: string, value: T): Promise<void> {
    this.values.set(key, JSON.stringify(value));
  }
  async deleteState(key: string): Promise<void> {
    this.values.delete(key);
  }
}

/** A listTags that answers only by failing when its signal aborts. */
function hangUntilAborted(onCall?: () => void): MemoryReader['listTags'] {
  return (_repository, options) => new Promise<string[]>((_resolve, reject) => {
    onCall?.();
    options?.signal?.addEventListener('abort', () => reject(options.signal!.reason));
  });
}

const REPO = '127.0.0.1:5000/team/app';
const OTHER = '127.0.0.1:5000/team/api';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A job's place in its interval such that its first slot is now (real clock). */
function dueNow(_key: string, spread: number): number {
  return Date.now() % spread;
}

function target(id: string, fields: Partial<Omit<WatchTarget, 'policy'>> & { policy?: string } = {}): WatchTarget {
  const { policy, ...rest } = fields;
  return { id, repository: REPO, current: '1.0.0', ...rest, policy: parsePolicy(policy ?? 'minor') };
}

function setup(options: { store?: StateStore; backoff?: Duration } = {}) {
  const reader = new MemoryReader();
  const clock = { now: T0 };
  const watcher = new RegistryWatcher({ reader, store: options.store, backoff: options.backoff, now: () => clock.now, jitter: () => 0 });
  const events: RegistryChange[] = [];
  watcher.subscribe((change) => {
    events.push(change);
  });
  return { reader, clock, watcher, events };
}

describe('RegistryWatcher', () => {
  describe('one job per repository or repository:tag', () => {
    it('makes one request per distinct repository (tags) and repository:tag (digest) per cycle', async () => {
      const { reader, watcher } = setup();
      reader.tags.set(REPO, ['1.0.0']);
      reader.tags.set(OTHER, ['2.0.0']);
      reader.digests.set(`${REPO}:latest`, D1);
      for (let i = 0; i < 10; i++) watcher.addTarget(target(`app-${i}`, { policy: i % 2 ? 'minor' : 'major' }));
      for (let i = 0; i < 5; i++) watcher.addTarget(target(`api-${i}`, { repository: OTHER, current: '2.0.0' }));
      for (let i = 0; i < 3; i++) watcher.addTarget(target(`latest-${i}`, { current: 'latest', policy: 'force' }));

      const result = await watcher.pollOnce();

      expect(result.checked).to.equal(3);
      expect(reader.requests).to.have.members([`tags ${REPO}`, `tags ${OTHER}`, `head ${REPO}:latest`]);
      expect(watcher.status().map((job) => [job.key, job.mode, job.targetIds.length])).to.have.deep.members([
        [REPO, 'tags', 10], [OTHER, 'tags', 5], [`${REPO}:latest`, 'digest', 3],
      ]);
    });

    it('polls at the most frequent schedule of its targets', async () => {
      const { reader, clock, watcher } = setup();
      reader.tags.set(REPO, ['1.0.0']);
      watcher.addTarget(target('slow', { schedule: parseSchedule('@every 5m') }));
      watcher.addTarget(target('fast', { schedule: parseSchedule('@every 30s') }));
      watcher.addTarget(target('cron', { schedule: parseSchedule('0 */2 * * * *') }));
      expect(watcher.status()[0]!.schedule).to.equal('@every 30s');

      expect((await watcher.pollOnce()).checked).to.equal(1);
      clock.now += 29_000;
      expect((await watcher.pollOnce()).checked).to.equal(0);
      clock.now += 1_000;
      expect((await watcher.pollOnce()).checked).to.equal(1);

      watcher.removeTarget('fast');
      expect(watcher.status()[0]!.schedule).to.equal('0 */2 * * * *');
    });

    it("runs Keel's six-field cron with seconds", async () => {
      const { reader, clock, watcher } = setup();
      reader.tags.set(REPO, ['1.0.0']);
      watcher.addTarget(target('a', { schedule: parseSchedule('*/10 * * * * *') }));
      await watcher.pollOnce();
      expect(watcher.status()[0]!.nextCheckAt).to.equal('2026-01-01T00:00:10.000Z');
      clock.now += 10_000;
      expect((await watcher.pollOnce()).checked).to.equal(1);
    });

    it('drops a job when its last target goes, and moves a target whose tag changed', async () => {
      const { watcher } = setup();
      watcher.addTarget(target('a', { current: 'main', policy: 'force' }));
      watcher.addTarget(target('b', { current: 'main', policy: 'force' }));
      watcher.updateTarget(target('b', { current: 'dev', policy: 'force' }));
      expect(watcher.status().map((job) => [job.key, job.targetIds])).to.have.deep.members([
        [`${REPO}:main`, ['a']], [`${REPO}:dev`, ['b']],
      ]);
      watcher.removeTarget('a');
      watcher.removeTarget('unknown');
      expect(watcher.status().map((job) => job.key)).to.deep.equal([`${REPO}:dev`]);
    });

    it('does not watch a never policy or a digest-pinned image', async () => {
      const { reader, watcher } = setup();
      watcher.addTarget(target('n', { policy: 'never' }));
      watcher.addTarget(target('pinned', { current: D1, policy: 'force' }));
      expect(watcher.status()).to.deep.equal([]);
      expect((await watcher.pollOnce()).checked).to.equal(0);
      expect(reader.requests).to.deep.equal([]);
    });

    it('refuses a target it cannot watch, naming it', () => {
      const { watcher } = setup();
      expect(() => watcher.addTarget(target('x', { repository: 'team/app:1.0' }))).to.throw(InputError, /registry watch target "x": repository "team\/app:1.0" is not host\[:port\]\/path/);
      expect(() => watcher.addTarget(target('y', { current: 'a b' }))).to.throw(InputError, /current tag "a b"/);
      expect(() => watcher.addTarget(target('z', { currentDigest: 'md5:x' }))).to.throw(InputError, /current digest/);
      expect(watcher.status()).to.deep.equal([]);
    });
  });

  describe('digest mode', () => {
    it('records a baseline first, fires once per new digest, never for the same digest', async () => {
      const { reader, clock, watcher, events } = setup();
      reader.digests.set(`${REPO}:latest`, D1);
      watcher.addTarget(target('a', { current: 'latest', policy: 'force' }));
      watcher.addTarget(target('b', { current: 'latest', policy: 'force', matchTag: true }));

      await watcher.pollOnce();
      expect(events).to.deep.equal([]);

      reader.digests.set(`${REPO}:latest`, D2);
      clock.now += 60_000;
      await watcher.pollOnce();
      expect(events).to.deep.equal([{ targetIds: ['a', 'b'], repository: REPO, oldTag: 'latest', newTag: 'latest', oldDigest: D1, newDigest: D2 }]);

      clock.now += 60_000;
      await watcher.pollOnce();
      expect(events).to.have.length(1);
    });

    it('fires on the first observation for a target whose running digest differs', async () => {
      const { reader, watcher, events } = setup();
      reader.digests.set(`${REPO}:latest`, D2);
      watcher.addTarget(target('stale', { current: 'latest', policy: 'force', currentDigest: D1 }));
      watcher.addTarget(target('fresh', { current: 'latest', policy: 'force', currentDigest: D2 }));
      watcher.addTarget(target('unknown', { current: 'latest', policy: 'force' }));
      await watcher.pollOnce();
      expect(events).to.deep.equal([{ targetIds: ['stale'], repository: REPO, oldTag: 'latest', newTag: 'latest', oldDigest: D1, newDigest: D2 }]);
    });

    it('follows the digest of a non-version tag under a semver policy', async () => {
      const { reader, watcher } = setup();
      reader.digests.set(`${REPO}:latest`, D1);
      watcher.addTarget(target('a', { current: 'latest', policy: 'major' }));
      await watcher.pollOnce();
      expect(reader.requests).to.deep.equal([`head ${REPO}:latest`]);
    });
  });

  describe('tag mode', () => {
    it("lets each target's policy choose and groups targets that move the same way", async () => {
      const { reader, clock, watcher, events } = setup();
      reader.tags.set(REPO, ['1.0.0', '1.0.1', '1.1.0', '2.0.0', 'latest']);
      watcher.addTarget(target('patch-1', { policy: 'patch' }));
      watcher.addTarget(target('patch-2', { policy: 'patch', currentDigest: D1 }));
      watcher.addTarget(target('minor', { policy: 'minor' }));
      watcher.addTarget(target('major', { policy: 'major' }));
      watcher.addTarget(target('up-to-date', { policy: 'major', current: '2.0.0' }));

      await watcher.pollOnce();
      expect(reader.requests).to.deep.equal([`tags ${REPO}`]);
      expect(events).to.have.deep.members([
        { targetIds: ['patch-1'], repository: REPO, oldTag: '1.0.0', newTag: '1.0.1' },
        { targetIds: ['patch-2'], repository: REPO, oldTag: '1.0.0', newTag: '1.0.1', oldDigest: D1 },
        { targetIds: ['minor'], repository: REPO, oldTag: '1.0.0', newTag: '1.1.0' },
        { targetIds: ['major'], repository: REPO, oldTag: '1.0.0', newTag: '2.0.0' },
      ]);

      // reported once: the same tags again fire nothing, a newer tag fires from the last one
      events.length = 0;
      clock.now += 60_000;
      await watcher.pollOnce();
      expect(events).to.deep.equal([]);
      reader.tags.get(REPO)!.push('2.1.0');
      clock.now += 60_000;
      await watcher.pollOnce();
      expect(events).to.deep.equal([{ targetIds: ['major', 'up-to-date'], repository: REPO, oldTag: '2.0.0', newTag: '2.1.0' }]);
    });

    it('asks each policy a question once per check, however many targets share it', async () => {
      const { reader, watcher, events } = setup();
      reader.tags.set(REPO, ['1.0.0', '1.1.0', '2.0.0']);
      const asked: string[] = [];
      const counted = (text: string) => {
        const policy = parsePolicy(text);
        return { kind: policy.kind, text: policy.text, watchMode: policy.watchMode.bind(policy), choose: (current: string, tags: readonly string[], options?: object) => {
          asked.push(`${text} ${current}`);
          return policy.choose(current, tags, options);
        } };
      };
      for (let i = 0; i < 10; i++) watcher.addTarget({ ...target(`minor-${i}`), policy: counted('minor') });
      watcher.addTarget({ ...target('major'), policy: counted('major') });
      watcher.addTarget({ ...target('minor-ahead', { current: '1.1.0' }), policy: counted('minor') });
      watcher.addTarget({ ...target('minor-any-pre-release', { matchPreRelease: false }), policy: counted('minor') });
      await watcher.pollOnce();
      expect(asked.sort()).to.deep.equal(['major 1.0.0', 'minor 1.0.0', 'minor 1.0.0', 'minor 1.1.0']);
      expect(events).to.have.deep.members([
        { targetIds: [...Array.from({ length: 10 }, (_, i) => `minor-${i}`), 'minor-any-pre-release'], repository: REPO, oldTag: '1.0.0', newTag: '1.1.0' },
        { targetIds: ['major'], repository: REPO, oldTag: '1.0.0', newTag: '2.0.0' },
      ]);
    });

    it("starts again from a target's own tag after a rollout or a manual change", async () => {
      const { reader, clock, watcher, events } = setup();
      reader.tags.set(REPO, ['1.0.0', '1.2.0']);
      watcher.addTarget(target('a', { policy: 'minor' }));
      await watcher.pollOnce();
      expect(events.map((e) => e.newTag)).to.deep.equal(['1.2.0']);
      watcher.updateTarget(target('a', { policy: 'minor', current: '1.2.0' })); // rolled out
      watcher.updateTarget(target('a', { policy: 'minor', current: '1.0.0' })); // someone went back by hand
      clock.now += 60_000;
      await watcher.pollOnce();
      expect(events.map((e) => `${e.oldTag}->${e.newTag}`)).to.deep.equal(['1.0.0->1.2.0', '1.0.0->1.2.0']);
    });
  });

  describe('restarts', () => {
    it('fires nothing after a restart alone, and once for a change made while down', async () => {
      const store = new MapState();
      const first = setup({ store });
      first.reader.digests.set(`${REPO}:latest`, D1);
      first.reader.tags.set(REPO, ['1.0.0', '1.1.0']);
      first.watcher.addTarget(target('digest', { current: 'latest', policy: 'force' }));
      first.watcher.addTarget(target('tags', { policy: 'minor' }));
      await first.watcher.pollOnce();
      expect(first.events.map((e) => e.newTag)).to.deep.equal(['1.1.0']);
      await first.watcher.stop();
      expect([...store.values.keys()]).to.have.members([`registry:digest:${REPO}:latest`, `registry:tags:${REPO}`]);

      // restart, nothing changed: the pods still run what they ran
      const second = setup({ store });
      second.reader.digests.set(`${REPO}:latest`, D1);
      second.reader.tags.set(REPO, ['1.0.0', '1.1.0']);
      second.watcher.addTarget(target('digest', { current: 'latest', policy: 'force' }));
      second.watcher.addTarget(target('tags', { policy: 'minor' }));
      await second.watcher.pollOnce();
      expect(second.events).to.deep.equal([]);

      // a push while keelson was down
      const third = setup({ store });
      third.reader.digests.set(`${REPO}:latest`, D3);
      third.reader.tags.set(REPO, ['1.0.0', '1.1.0', '1.2.0']);
      third.watcher.addTarget(target('digest', { current: 'latest', policy: 'force' }));
      third.watcher.addTarget(target('tags', { policy: 'minor' }));
      await third.watcher.pollOnce();
      third.clock.now += 60_000;
      await third.watcher.pollOnce();
      expect(third.events).to.have.deep.members([
        { targetIds: ['digest'], repository: REPO, oldTag: 'latest', newTag: 'latest', oldDigest: D1, newDigest: D3 },
        { targetIds: ['tags'], repository: REPO, oldTag: '1.1.0', newTag: '1.2.0' },
      ]);
    });

    it('ignores an unreadable stored baseline and starts from the target', async () => {
      const store = new MapState();
      await store.setState(`registry:digest:${REPO}:latest`, { targets: 'garbage' });
      const { reader, watcher, events } = setup({ store });
      reader.digests.set(`${REPO}:latest`, D1);
      watcher.addTarget(target('a', { current: 'latest', policy: 'force' }));
      await watcher.pollOnce();
      expect(events).to.deep.equal([]);
      expect(await store.getState(`registry:digest:${REPO}:latest`)).to.deep.equal({
        targets: { a: { current: 'latest', tag: 'latest', digest: D1 } },
      });
    });
  });

  describe('failures', () => {
    it('backs off a failing repository while every other job keeps running', async () => {
      const { reader, clock, watcher, events } = setup({ backoff: Duration.ofSeconds(60) });
      reader.tags.set(REPO, ['1.0.0', '1.1.0']);
      reader.tags.set(OTHER, ['1.0.0']);
      reader.failing.set(OTHER, Object.assign(new Error('127.0.0.1:5000/team/api: authentication required (HTTP 401)'), { code: 'KEELSON_REGISTRY_AUTH' }));
      watcher.addTarget(target('ok', { schedule: parseSchedule('@every 30s') }));
      watcher.addTarget(target('bad', { repository: OTHER, schedule: parseSchedule('@every 30s') }));

      const first = await watcher.pollOnce();
      expect(first).to.include({ checked: 2, failed: 1 });
      expect(events.map((e) => e.targetIds)).to.deep.equal([['ok']]);
      const bad = watcher.status().find((job) => job.key === OTHER)!;
      expect(bad).to.include({ failures: 1, lastError: '127.0.0.1:5000/team/api: authentication required (HTTP 401)' });
      expect(bad.nextCheckAt).to.equal(new Date(T0 + 60_000).toISOString());

      clock.now += 30_000; // the healthy job is due, the failing one is backing off
      expect((await watcher.pollOnce()).checked).to.equal(1);
      clock.now += 30_000;
      expect(await watcher.pollOnce()).to.include({ checked: 2, failed: 1 });
      expect(watcher.status().find((job) => job.key === OTHER)!.nextCheckAt).to.equal(new Date(T0 + 60_000 + 120_000).toISOString());

      reader.failing.delete(OTHER);
      await watcher.checkNow(OTHER); // a webhook does not wait for the backoff
      expect(watcher.status().find((job) => job.key === OTHER)).to.include({ failures: 0 });
    });

    it('logs one clear line per failed check, naming the repository and the wait', async () => {
      const reader = new MemoryReader();
      reader.failing.set(REPO, Object.assign(new Error(`${REPO}: repository not found (HTTP 404)`), { code: 'KEELSON_REGISTRY_NOT_FOUND' }));
      const output = new PassThrough();
      const lines: string[] = [];
      output.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
      const watcher = new RegistryWatcher({ reader, logger: createLogger({ destination: output, pretty: false, level: 'info' }), now: () => T0, jitter: () => 0 });
      watcher.addTarget(target('a'));
      await watcher.pollOnce();
      expect(lines.map((line) => JSON.parse(line))).to.deep.equal([{
        level: 50, time: JSON.parse(lines[0]!).time, part: 'registry-watch', msg: 'registry check failed; backing off',
        job: REPO, repository: REPO, code: 'KEELSON_REGISTRY_NOT_FOUND', error: `${REPO}: repository not found (HTTP 404)`,
        failures: 1, retryInSeconds: 60,
      }]);
    });

    it('honours a Retry-After longer than the backoff', async () => {
      const { reader, watcher } = setup({ backoff: Duration.ofSeconds(1) });
      reader.failing.set(REPO, Object.assign(new Error('rate limited'), { retryAfterMs: 300_000 }));
      watcher.addTarget(target('a'));
      await watcher.pollOnce();
      expect(watcher.status()[0]!.nextCheckAt).to.equal(new Date(T0 + 300_000).toISOString());
    });

    it('keeps delivering when a subscriber throws', async () => {
      const { reader, watcher, events } = setup();
      reader.tags.set(REPO, ['1.1.0']);
      watcher.subscribe(() => {
        throw new Error('boom');
      });
      const after: RegistryChange[] = [];
      watcher.subscribe((change) => {
        after.push(change);
      });
      watcher.addTarget(target('a'));
      await watcher.pollOnce();
      expect(events).to.have.length(1);
      expect(after).to.have.length(1);
    });
  });

  describe('one request per distinct image per interval, from the first cycle on', () => {
    const IMAGES = 20;
    const WORKLOADS_PER_IMAGE = 10;
    const every30s = parseSchedule('@every 30s');
    const repo = (i: number) => `127.0.0.1:5000/team/image-${i}`;
    const all = (): WatchTarget[] => Array.from({ length: IMAGES * WORKLOADS_PER_IMAGE }, (_, n) =>
      target(`ns-${n % 4}/deployment/app-${n}/app`, { repository: repo(n % IMAGES), schedule: every30s }));
    /** What discovery delivers, at which second after start: informer lists, re-lists, namespaces appearing. */
    const cases: ReadonlyArray<{ name: string; events: ReadonlyArray<{ at: number; add?: WatchTarget[]; remove?: string[] }> }> = [
      { name: 'all at once, in list order', events: [{ at: 0, add: all() }] },
      { name: 'all at once, reversed', events: [{ at: 0, add: all().reverse() }] },
      { name: 'one target at a time, 50 ms apart', events: all().map((t, i) => ({ at: i * 0.05, add: [t] })) },
      { name: 're-listed three times', events: [{ at: 0, add: all() }, { at: 3, add: all() }, { at: 31, add: all().reverse() }, { at: 61, add: all() }] },
      { name: 'namespaces discovered one after the other', events: [0, 1, 2, 3].map((ns) => ({ at: ns * 7, add: all().filter((t) => t.id.startsWith(`ns-${ns}/`)) })) },
      {
        name: 'every workload of an image deleted and created again',
        events: [{ at: 0, add: all() }, { at: 40, remove: all().map((t) => t.id) }, { at: 41, add: all() }],
      },
    ];

    for (const { name, events } of cases) {
      it(`${name}: one job per image, each checked once per 30s`, async () => {
        const reader = new MemoryReader();
        for (let i = 0; i < IMAGES; i++) reader.tags.set(repo(i), ['1.0.0']);
        const clock = { now: T0 + 123 };
        const checks = new Map<string, number[]>();
        reader.listTags = async (repository) => {
          checks.set(repository, [...(checks.get(repository) ?? []), clock.now]);
          return ['1.0.0'];
        };
        const watcher = new RegistryWatcher({ reader, now: () => clock.now });
        const start = clock.now;
        let pending = [...events];
        for (let step = 0; step <= 180; step++) { // 90 s in half seconds: three cycles
          clock.now = start + step * 500;
          for (const event of pending.filter((e) => start + e.at * 1000 <= clock.now)) {
            for (const t of event.add ?? []) watcher.addTarget(t);
            for (const id of event.remove ?? []) watcher.removeTarget(id);
          }
          pending = pending.filter((e) => start + e.at * 1000 > clock.now);
          await watcher.pollOnce();
        }
        expect(watcher.status()).to.have.length(IMAGES);
        for (let i = 0; i < IMAGES; i++) {
          const times = checks.get(repo(i)) ?? [];
          expect(times.length, repo(i)).to.be.within(2, 3);
          for (let k = 1; k < times.length; k++) expect(times[k]! - times[k - 1]!, `${repo(i)} gap`).to.be.at.least(29_500);
        }
      });
    }

    it('immediateJitter: a job added after the watcher was made is checked at once, then one interval after', async () => {
      const reader = new MemoryReader();
      reader.tags.set(REPO, ['1.0.0']);
      const clock = { now: T0 + 123 };
      const watcher = new RegistryWatcher({ reader, now: () => clock.now, jitter: immediateJitter(() => clock.now) });
      clock.now += 7; // the local deploy loop adds its targets a moment after making the watcher
      watcher.addTarget(target('web'));
      expect((await watcher.pollOnce()).checked, 'first poll').to.equal(1);
      expect(Date.parse(watcher.status()[0]!.nextCheckAt!) - clock.now, 'the default @every 1m').to.equal(60_000);
    });

    it('puts each job at the same place in its interval whatever the discovery order', () => {
      const nextChecks = (targets: WatchTarget[]) => {
        const watcher = new RegistryWatcher({ reader: new MemoryReader(), now: () => T0 + 123 });
        for (const t of targets) watcher.addTarget(t);
        return Object.fromEntries(watcher.status().map((job) => [job.key, job.nextCheckAt]));
      };
      const inOrder = nextChecks(all());
      expect(nextChecks(all().reverse())).to.deep.equal(inOrder);
      expect(nextChecks([...all(), ...all()])).to.deep.equal(inOrder);
      // spread over the interval, not all at the start
      const offsets = new Set(Object.values(inOrder).map((at) => Math.floor((Date.parse(at) - T0) / 3000)));
      expect(offsets.size).to.be.at.least(5);
      for (const at of Object.values(inOrder)) expect(Date.parse(at) - (T0 + 123)).to.be.within(0, 30_000);
    });

    it('puts jobs on whole seconds of their interval, so the checks due in one second go out together', () => {
      const watcher = new RegistryWatcher({ reader: new MemoryReader(), now: () => T0 + 123 });
      const many = Array.from({ length: 1000 }, (_, i) => target(`app-${i}`, { repository: repo(i), schedule: every30s }));
      for (const t of many) watcher.addTarget(t);
      const dueTimes = new Set(watcher.status().map((job) => Date.parse(job.nextCheckAt!)));
      expect(watcher.status()).to.have.length(1000);
      // 1,000 jobs share at most the 30 whole seconds of the interval, and fill most of them.
      expect(dueTimes.size).to.be.within(25, 30);
      for (const at of dueTimes) expect(at % 1000, new Date(at).toISOString()).to.equal(0);
    });

    it('stableJitter: whole steps in [0, spread) when the spread holds two, the exact hash below that', () => {
      const offsets = Array.from({ length: 500 }, (_, i) => stableJitter(`127.0.0.1:5000/team/image-${i}`, 30_000));
      for (const offset of offsets) {
        expect(offset % SLOT_STEP_MS).to.equal(0);
        expect(offset).to.be.within(0, 30_000 - SLOT_STEP_MS);
      }
      expect(new Set(offsets).size).to.equal(30);
      expect(stableJitter('a', 30_000)).to.equal(stableJitter('a', 30_000));
      const fine = Array.from({ length: 200 }, (_, i) => stableJitter(`image-${i}`, 1500));
      expect(fine.some((offset) => offset % SLOT_STEP_MS !== 0), 'a 1.5 s spread is not rounded to whole seconds').to.equal(true);
      for (const offset of fine) expect(offset).to.be.within(0, 1499);
    });

    it('never checks a job twice for one due time while started, however slow the registry', async function () {
      this.timeout(10_000);
      const reader = new MemoryReader();
      const requests: string[] = [];
      reader.listTags = async (repository) => {
        requests.push(repository);
        await new Promise((resolve) => setTimeout(resolve, 5));
        return ['1.0.0'];
      };
      // Every job due at the same moment: the worst case for a queue of checks.
      const watcher = new RegistryWatcher({ reader, jitter: dueNow, concurrency: 4 });
      watcher.start();
      try {
        const targets = all();
        for (let batch = 0; batch < 10; batch++) {
          for (const t of targets.slice(batch * 20, batch * 20 + 20)) watcher.addTarget({ ...t, schedule: parseSchedule('@every 1m') });
          await new Promise((resolve) => setTimeout(resolve, 3));
        }
        const deadline = Date.now() + 5000;
        while (requests.length < IMAGES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        await watcher.stop();
      }
      expect([...requests].sort()).to.deep.equal(Array.from({ length: IMAGES }, (_, i) => repo(i)).sort());
    });

    it('says when checks start too late to keep their cycle', async () => {
      const reader = new MemoryReader();
      const clock = { now: T0 };
      reader.listTags = async () => {
        clock.now += 400; // a slow registry: 10 checks take 4 s of a 1 s interval
        return ['1.0.0'];
      };
      const output = new PassThrough();
      const lines: string[] = [];
      output.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
      let late = 0;
      const watcher = new RegistryWatcher({
        reader, now: () => clock.now, jitter: () => 0, concurrency: 1, onOverrun: (n) => { late += n; },
        logger: createLogger({ destination: output, pretty: false, level: 'info' }),
      });
      for (let i = 0; i < 10; i++) watcher.addTarget(target(`t${i}`, { repository: repo(i), schedule: parseSchedule('@every 1s') }));
      expect((await watcher.pollOnce()).checked).to.equal(10);
      expect(late).to.equal(8); // the ones that started more than half a second after their slot
      const warnings = lines.map((line) => JSON.parse(line) as { msg: string; late: number }).filter((l) => l.msg.startsWith('registry poll cycle overrun'));
      expect(warnings).to.have.length(1);
      expect(warnings[0]!.late).to.equal(1);
    });
  });

  describe('checkNow', () => {
    it('checks the jobs of one repository out of schedule', async () => {
      const { reader, watcher } = setup();
      reader.tags.set(REPO, ['1.1.0']);
      reader.tags.set(OTHER, ['1.0.0']);
      reader.digests.set(`${REPO}:latest`, D1);
      watcher.addTarget(target('a'));
      watcher.addTarget(target('b', { current: 'latest', policy: 'force' }));
      watcher.addTarget(target('c', { repository: OTHER }));
      await watcher.pollOnce();
      reader.requests.length = 0;

      const changes = await watcher.checkNow(REPO);
      expect(changes).to.deep.equal([]);
      expect(reader.requests).to.have.members([`tags ${REPO}`, `head ${REPO}:latest`]);
    });

    it('checks again after a check that was already running', async () => {
      const { reader, watcher, events } = setup();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      let entered!: () => void;
      const inFlight = new Promise<void>((resolve) => { entered = resolve; });
      let calls = 0;
      reader.digests.set(`${REPO}:latest`, D1);
      const original = reader.manifestDigest.bind(reader);
      reader.manifestDigest = async (repository, reference) => {
        calls += 1;
        const digest = await original(repository, reference); // what the registry had when asked
        if (calls === 1) {
          entered();
          await gate;
        }
        return digest;
      };
      watcher.addTarget(target('a', { current: 'latest', policy: 'force' }));
      const poll = watcher.pollOnce();
      await inFlight;
      reader.digests.set(`${REPO}:latest`, D2); // pushed while the first check is in flight
      const webhook = watcher.checkNow(REPO);
      release();
      await poll;
      await webhook;
      expect(calls).to.equal(2);
      expect(events.map((e) => e.newDigest)).to.deep.equal([D2]);
    });
  });

  describe('queue', () => {
    it('puts a webhook check ahead of scheduled ones and sends no second request for a queued job', async () => {
      const reader = new MemoryReader();
      const order: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      reader.listTags = async (repository) => {
        order.push(repository);
        if (order.length === 1) await gate;
        return ['1.0.0'];
      };
      const repos = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].map((n) => `127.0.0.1:5000/team/${n}`);
      const queued = new RegistryWatcher({ reader, now: () => T0, jitter: () => 0, concurrency: 1 });
      for (const r of repos) queued.addTarget(target(r, { repository: r }));
      const poll = queued.pollOnce();
      const webhook = queued.checkNow(repos[9]);
      release();
      await Promise.all([poll, webhook]);
      expect(order).to.deep.equal([repos[0], repos[9], ...repos.slice(1, 9)]);
    });
  });

  describe('start and stop', () => {
    it('checks new jobs on its own once started, and stops', async () => {
      const reader = new MemoryReader();
      reader.tags.set(REPO, ['1.1.0']);
      const watcher = new RegistryWatcher({ reader, jitter: dueNow });
      const fired = new Promise<RegistryChange>((resolve) => watcher.subscribe(resolve));
      watcher.addTarget(target('a'));
      watcher.start();
      try {
        expect(await fired).to.include({ oldTag: '1.0.0', newTag: '1.1.0' });
      } finally {
        await watcher.stop();
      }
      expect(watcher.status()[0]!.failures).to.equal(0);
    });

    it('aborts a check in flight on stop without counting a failure', async () => {
      const reader = new MemoryReader();
      let entered!: () => void;
      const inFlight = new Promise<void>((resolve) => { entered = resolve; });
      reader.listTags = hangUntilAborted(entered);
      const watcher = new RegistryWatcher({ reader, jitter: dueNow });
      watcher.addTarget(target('a'));
      const poll = watcher.pollOnce();
      await inFlight;
      await watcher.stop();
      expect(await poll).to.include({ checked: 1, failed: 0 });
      expect(watcher.status()[0]!.failures).to.equal(0);
    });

    it('gives up on a check that takes longer than checkTimeout', async () => {
      const reader = new MemoryReader();
      reader.listTags = hangUntilAborted();
      const watcher = new RegistryWatcher({ reader, checkTimeout: Duration.ofMilliseconds(20), jitter: dueNow });
      watcher.addTarget(target('a'));
      expect(await watcher.pollOnce()).to.include({ checked: 1, failed: 1 });
      expect(watcher.status()[0]!.lastError).to.equal('no answer within 0.02s');
    });

    it('rejects unknown options by name', () => {
      expect(() => new RegistryWatcher({ reader: new MemoryReader(), pollInterval: 5 } as never)).to.throw(TypeError, /unknown option "pollInterval"/);
    });
  });
});
