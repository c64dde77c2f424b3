import { expect } from 'chai';
import { expandTags, toImageTag } from '../../../src/executor/index.js';

describe('image tags', () => {
  const source = { dir: '/tmp/x', repo: '/r', branch: 'feature/login', commit: '0123456789abcdef0123456789abcdef01234567' };
  it('expands branch and short commit into valid tags', () => {
    expect(expandTags(['{{branch}}', '{{shortCommit}}', 'v1-{{ commit }}'], source)).to.deep.equal([
      'feature-login', '0123456789ab', 'v1-0123456789abcdef0123456789abcdef01234567',
    ]);
  });
  it('drops duplicate tags', () => {
    expect(expandTags(['latest', 'latest'], source)).to.deep.equal(['latest']);
  });
  const tags: Array<[string, string]> = [['main', 'main'], ['.hidden', 'hidden'], ['a b/c', 'a-b-c'], ['', 'latest'], ['x'.repeat(200), 'x'.repeat(128)]];
  for (const [input, expected] of tags) {
    it(`makes a tag of ${JSON.stringify(input).slice(0, 20)}`, () => expect(toImageTag(input)).to.equal(expected));
  }
});
