import { expect } from 'chai';
import { GoRegexpError, translateGoRegexp } from '../../../src/policy/index.js';

describe('translateGoRegexp', () => {
  const translations: readonly [string, string, string][] = [
    ['^v(?P<compare>\\d+)$', '^v(?<compare>\\d+)$', ''],
    ['(?i)^abc', '^abc', 'i'],
    ['(?is)a.b', 'a.b', 'is'],
    ['(?i)(?m)^x', '^x', 'im'],
    ['(?i-s)x', 'x', 'i'],
    ['abc\\z', 'abc(?![\\s\\S])', ''],
    ['\\Aabc', '(?<![\\s\\S])abc', ''],
    ['\\Qa.b*\\Ec', 'a\\.b\\*c', ''],
    ['[[:alpha:]_]+', '[A-Za-z_]+', ''],
    ['[]a]', '[\\]a]', ''],
    ['[^]a]', '[^\\]a]', ''],
    ['\\pL+', '\\p{L}+', 'u'],
    ['\\p{Greek}', '\\p{Script=Greek}', 'u'],
    ['\\P{Lu}', '\\P{Lu}', 'u'],
    ['\\x{1F600}', '\\u{1F600}', 'u'],
    ['\\x41', '\\x41', ''],
    ['a\\#b', 'a#b', ''],
    ['a\\.b', 'a\\.b', ''],
    ['(?:a|b)(?<n>c)', '(?:a|b)(?<n>c)', ''],
  ];
  for (const [go, js, flags] of translations) {
    it(`translates ${go}`, () => {
      expect(translateGoRegexp(go)).to.deep.equal({ source: js, flags });
      expect(() => new RegExp(js, flags)).not.to.throw();
    });
  }

  it('matches what Go would match', () => {
    const cases: readonly [string, string, boolean][] = [
      ['^v\\d+\\z', 'v12', true],
      ['^v\\d+\\z', 'v12\n', false],
      ['(?i)^RC', 'rc-1', true],
      ['^[[:xdigit:]]{7}$', 'a1b2c3d', true],
      ['^[[:xdigit:]]{7}$', 'a1b2c3g', false],
      ['\\Q1.0\\E', '1x0', false],
      ['\\Q1.0\\E', '1.0', true],
    ];
    for (const [go, input, want] of cases) {
      const { source, flags } = translateGoRegexp(go);
      expect(new RegExp(source, flags).test(input), `${go} on ${JSON.stringify(input)}`).to.equal(want);
    }
  });

  for (const bad of ['(?U)a', 'a(?i)b', '(?x)a', '\\1', 'a\\C', '[[:^alpha:]]', '[a', 'a\\', '\\p{1}', '\\x{zz}']) {
    it(`rejects ${bad}`, () => {
      expect(() => translateGoRegexp(bad)).to.throw(GoRegexpError);
    });
  }
});
