import { expect } from 'chai';
import { DigestMemo } from '../../../src/rollout/digest-memo.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('DigestMemo', () => {
  it('asks the registry once for concurrent lookups of one tag, and once per tag', async () => {
    const asked: string[] = [];
    const memo = new DigestMemo(async (repository, tag) => {
      asked.push(`${repository}:${tag}`);
      return tag === '1.1.0' ? D1 : D2;
    });
    const digests = await Promise.all([
      ...Array.from({ length: 10 }, () => memo.digest('reg/app', '1.1.0')),
      memo.digest('reg/app', '1.2.0'),
      memo.digest('reg/other', '1.1.0'),
    ]);
    expect(digests.slice(0, 10)).to.deep.equal(Array(10).fill(D1));
    expect(digests.slice(10)).to.deep.equal([D2, D1]);
    expect(asked).to.deep.equal(['reg/app:1.1.0', 'reg/app:1.2.0', 'reg/other:1.1.0']);
  });

  it('asks again once the answer is older than its lifetime (a tag can be pushed again)', async () => {
    let now = 0;
    let digest = D1;
    let asked = 0;
    const memo = new DigestMemo(async () => { asked += 1; return digest; }, 5_000, () => now);
    expect(await memo.digest('reg/app', 'main')).to.equal(D1);
    digest = D2;
    now = 4_999;
    expect(await memo.digest('reg/app', 'main')).to.equal(D1);
    now = 5_000;
    expect(await memo.digest('reg/app', 'main')).to.equal(D2);
    expect(asked).to.equal(2);
  });

  it('answers undefined for a failed lookup, and does not keep it', async () => {
    let fail = true;
    const memo = new DigestMemo(async () => {
      if (fail) throw new Error('unreachable');
      return D1;
    });
    expect(await memo.digest('reg/app', '1.0.0')).to.equal(undefined);
    fail = false;
    expect(await memo.digest('reg/app', '1.0.0')).to.equal(D1);
  });
});
