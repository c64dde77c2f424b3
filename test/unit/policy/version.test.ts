import { expect } from 'chai';
import { compareTags, naturalCompare, parseVersion } from '../../../src/policy/index.js';

describe('parseVersion', () => {
  const cases: readonly [string, string | undefined, boolean][] = [
    ['1.2.3', '1.2.3', false],
    ['v1.2.3', '1.2.3', true],
    ['1.2', '1.2.0', false],
    ['01.02.03', '1.2.3', false],
    ['1.2.3-rc.1+build.5', '1.2.3-rc.1', false],
    ['7.9.1-1-ubi8', '7.9.1-1-ubi8', false],
    ['1', undefined, false],
    ['3050', undefined, false],
    ['1.2.3.4', undefined, false],
    ['latest', undefined, false],
    ['V1.2.3', undefined, false],
    ['1.2.3-', undefined, false],
  ];
  for (const [tag, version, prefixed] of cases) {
    it(`${tag} -> ${version ?? 'not a version'}`, () => {
      const parsed = parseVersion(tag);
      expect(parsed?.semver.version).to.equal(version);
      if (parsed) {
        expect(parsed.original).to.equal(tag);
        expect(parsed.prefixed).to.equal(prefixed);
      }
    });
  }
});

describe('naturalCompare and compareTags', () => {
  const ordered: readonly [string, string][] = [
    ['1.9', '1.10'],
    ['build-9', 'build-10'],
    ['a', 'b'],
    ['a', 'a1'],
    ['9', '10'],
    ['7', '07'],
  ];
  for (const [low, high] of ordered) {
    it(`${low} < ${high}`, () => {
      expect(naturalCompare(low, high)).to.be.below(0);
      expect(naturalCompare(high, low)).to.be.above(0);
    });
  }

  it('compares numbers beyond 2^53 exactly', () => {
    expect(compareTags('90071992547409930', '90071992547409931')).to.be.below(0);
  });

  it('orders versions as versions: a pre-release comes before its release', () => {
    expect(compareTags('1.0.0-rc.1', '1.0.0')).to.be.below(0);
    expect(naturalCompare('1.0.0-rc.1', '1.0.0')).to.be.above(0);
  });
});
