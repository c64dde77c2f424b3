import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ApprovalBook, ApprovalClosedError, ApprovalNotFoundError, approvalId, approvalStatus, type Approval, type ContainerChange, type WorkloadRef } from '../../../src/rollout/index.js';
import { FileStore, type Store } from '../../../src/store/index.js';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const hours = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);
const ref: WorkloadRef = { kind: 'Deployment', namespace: 'team', name: 'app' };
const changes: ContainerChange[] = [{ container: 'app', init: false, from: 'reg/app:1.0.0', to: 'reg/app:1.1.0' }];

function approval(over: Partial<Approval>): Approval {
  return { id: 'a-1', workload: ref, changes, votesRequired: 2, voters: [], rejected: false, createdAt: T0.toISOString(), deadline: hours(24).toISOString(), ...over };
}

describe('approvals', () => {
  describe('state machine', () => {
    const cases: Array<{ name: string; approval: Approval; now: Date; want: string }> = [
      { name: 'no votes yet', approval: approval({}), now: T0, want: 'pending' },
      { name: 'one of two', approval: approval({ voters: ['ann'] }), now: hours(1), want: 'pending' },
      { name: 'two of two', approval: approval({ voters: ['ann', 'bob'] }), now: hours(1), want: 'approved' },
      { name: 'approved stays approved past the deadline', approval: approval({ voters: ['ann', 'bob'] }), now: hours(30), want: 'approved' },
      { name: 'past the deadline without votes', approval: approval({ voters: ['ann'] }), now: hours(24), want: 'expired' },
      { name: 'rejected is final, votes or not', approval: approval({ voters: ['ann', 'bob'], rejected: true }), now: T0, want: 'rejected' },
    ];
    for (const c of cases) it(c.name, () => expect(approvalStatus(c.approval, c.now)).to.equal(c.want));
  });

  it('ids are short, stable per update and differ between updates', () => {
    const id = approvalId(ref, changes);
    expect(id).to.match(/^a-[0-9a-f]{10}$/);
    expect(approvalId(ref, changes)).to.equal(id);
    expect(approvalId(ref, [{ ...changes[0]!, to: 'reg/app:1.2.0' }])).to.not.equal(id);
    expect(approvalId({ ...ref, name: 'other' }, changes)).to.not.equal(id);
  });

  describe('ApprovalBook on a file store', () => {
    let dir: string;
    let store: Store;
    let book: ApprovalBook;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keelson-approvals-'));
      store = await FileStore.open({ stateDir: dir });
      book = new ApprovalBook(store);
    });
    afterEach(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('requests once, counts each voter once, and approves at N votes', async () => {
      const first = await book.request(ref, changes, 2, 24, T0);
      expect(first.created).to.equal(true);
      expect(first.approval.deadline).to.equal(hours(24).toISOString());
      const again = await book.request(ref, changes, 2, 24, hours(1));
      expect(again.created).to.equal(false);
      const id = first.approval.id;
      await book.approve(id, 'ann', hours(1));
      const twice = await book.approve(id, 'ann', hours(1));
      expect(approvalStatus(twice, hours(1))).to.equal('pending');
      const done = await book.approve(id, 'bob', hours(2));
      expect(approvalStatus(done, hours(2))).to.equal('approved');
      expect((await book.list()).map((a) => a.id)).to.deep.equal([id]);
      await book.remove(id);
      expect(await book.list()).to.deep.equal([]);
    });

    it('refuses votes on unknown, rejected and expired approvals', async () => {
      const { approval: a } = await book.request(ref, changes, 1, 1, T0);
      try {
        await book.approve('a-0000000000', 'ann', T0);
        expect.fail('approved an unknown id');
      } catch (error) {
        expect(error).to.be.instanceOf(ApprovalNotFoundError);
      }
      try {
        await book.approve(a.id, 'ann', hours(2));
        expect.fail('approved an expired approval');
      } catch (error) {
        expect(error).to.be.instanceOf(ApprovalClosedError);
        expect((error as ApprovalClosedError).status).to.equal('expired');
      }
      await book.reject(a.id, 'bob', T0);
      try {
        await book.approve(a.id, 'ann', T0);
        expect.fail('approved a rejected approval');
      } catch (error) {
        expect((error as ApprovalClosedError).status).to.equal('rejected');
      }
    });

    it('closing keeps a rejected approval as a tombstone and forgets an expired one', async () => {
      const { approval: rejected } = await book.request(ref, changes, 1, 1, T0);
      await book.reject(rejected.id, 'bob', T0);
      await book.close((await book.get(rejected.id))!, T0);
      expect(await book.list()).to.deep.equal([]);
      expect((await book.request(ref, changes, 1, 1, hours(1))).created).to.equal(false);

      const other: ContainerChange[] = [{ ...changes[0]!, to: 'reg/app:2.0.0' }];
      const { approval: expired } = await book.request(ref, other, 1, 1, T0);
      await book.close(expired, hours(2));
      expect(await book.get(expired.id)).to.equal(undefined);
      expect((await book.request(ref, other, 1, 1, hours(3))).created).to.equal(true);
    });
  });
});
