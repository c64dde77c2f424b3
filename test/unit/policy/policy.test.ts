import { expect } from 'chai';
import { InputError } from '../../../src/errors.js';
import { parsePolicy, type ChooseOptions } from '../../../src/policy/index.js';

interface Case {
  readonly name: string;
  readonly policy: string;
  readonly current: string;
  readonly candidates: readonly string[];
  readonly options?: ChooseOptions;
  readonly want: string | undefined;
}

function table(title: string, cases: readonly Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(`${c.name}: ${c.policy} ${c.current} -> ${c.want ?? '(nothing)'}`, () => {
        expect(parsePolicy(c.policy).choose(c.current, c.candidates, c.options)).to.equal(c.want);
      });
    }
  });
}

const TAGS = ['1.4.3', '1.4.5', '1.4.6', '1.5.0', '1.5.1', '2.0.0', '2.1.0-rc.1', 'latest'];

table('semver policies (Keel semver_test.go cases and more)', [
  { name: 'lower only', policy: 'all', current: '1.4.5', candidates: ['1.4.3'], want: undefined },
  { name: 'same only', policy: 'all', current: '1.4.5', candidates: ['1.4.5'], want: undefined },
  { name: 'all takes the highest, pre-release included', policy: 'all', current: '1.4.5', candidates: TAGS, want: '2.1.0-rc.1' },
  { name: 'major takes the highest release', policy: 'major', current: '1.4.5', candidates: TAGS, want: '2.0.0' },
  { name: 'minor stays on the major', policy: 'minor', current: '1.4.5', candidates: TAGS, want: '1.5.1' },
  { name: 'patch stays on the minor', policy: 'patch', current: '1.4.5', candidates: TAGS, want: '1.4.6' },
  { name: 'patch ignores a major bump with a patch bump', policy: 'patch', current: '1.4.5', candidates: ['2.4.6'], want: undefined },
  { name: 'patch decrease', policy: 'patch', current: '1.4.5', candidates: ['1.4.4'], want: undefined },
  { name: 'minor accepts a patch bump', policy: 'minor', current: '1.4.5', candidates: ['1.4.6'], want: '1.4.6' },
  { name: 'never a downgrade when only older tags exist', policy: 'major', current: '3.0.0', candidates: TAGS, want: undefined },
  { name: 'unsorted candidates', policy: 'major', current: '1.0.0', candidates: ['1.10.0', '1.9.0', '1.2.0'], want: '1.10.0' },
  { name: 'two-part versions', policy: 'minor', current: '1.9', candidates: ['1.10', '1.8', '2.0'], want: '1.10' },
  { name: 'bare numbers are not versions', policy: 'all', current: '1.4.5', candidates: ['3050'], want: undefined },
  { name: 'four-part tags are not versions', policy: 'all', current: '1.4.5', candidates: ['1.4.6.1'], want: undefined },
  { name: 'build metadata is not newer', policy: 'all', current: '1.4.5+a', candidates: ['1.4.5+b'], want: undefined },
]);

table('semver policies: v prefixes', [
  { name: 'v current, plain candidate', policy: 'minor', current: 'v1.0.0', candidates: ['1.1.0'], want: '1.1.0' },
  { name: 'plain current, v candidate keeps its spelling', policy: 'minor', current: '1.0.0', candidates: ['v1.1.0'], want: 'v1.1.0' },
  { name: 'same version both ways: the current spelling wins', policy: 'minor', current: 'v1.0.0', candidates: ['1.1.0', 'v1.1.0'], want: 'v1.1.0' },
  { name: 'same version both ways, plain current', policy: 'minor', current: '1.0.0', candidates: ['v1.1.0', '1.1.0'], want: '1.1.0' },
  { name: 'v prefix ordering is semver', policy: 'major', current: 'v1.9.0', candidates: ['v1.10.0', 'v1.9.1'], want: 'v1.10.0' },
]);

table('semver policies: pre-releases (matchPreRelease, default true)', [
  { name: 'release does not move to a pre-release', policy: 'minor', current: '1.4.5', candidates: ['1.4.5-xx', '1.4.6-rc.1'], want: undefined },
  { name: 'Keel: v1.0.0 -> v1.0.1-metadata refused', policy: 'minor', current: 'v1.0.0', candidates: ['v1.0.1-metadata'], want: undefined },
  { name: 'Keel: same pre-release string', policy: 'minor', current: 'v1.0.0-metadata', candidates: ['v1.0.1-metadata'], want: 'v1.0.1-metadata' },
  { name: 'Keel: 1.4.5-xx -> 1.4.6-xx', policy: 'minor', current: '1.4.5-xx', candidates: ['1.4.6-xx'], want: '1.4.6-xx' },
  { name: 'Keel: different pre-release kind', policy: 'minor', current: '1.4.5-xx', candidates: ['1.4.6-yy'], want: undefined },
  { name: 'numbered pre-releases of one kind', policy: 'patch', current: '1.2.3-rc.1', candidates: ['1.2.3-rc.2', '1.2.3-beta.5'], want: '1.2.3-rc.2' },
  { name: 'pre-release does not move to the release', policy: 'patch', current: '1.2.3-rc.1', candidates: ['1.2.3'], want: undefined },
  { name: 'variant suffix follows its variant', policy: 'major', current: '1.25.0-alpine', candidates: ['1.26.0', '1.26.0-alpine', '1.26.0-bookworm'], want: '1.26.0-alpine' },
  { name: 'a number in a word is part of the kind', policy: 'major', current: '7.9.1-ubi8', candidates: ['7.9.2-ubi9'], want: undefined },
  { name: 'all never checks pre-releases', policy: 'all', current: '1.2.3-rc.1', candidates: ['1.2.4-beta.1'], want: '1.2.4-beta.1' },
]);

table('semver policies: matchPreRelease=false', [
  { name: 'release moves to a higher pre-release', policy: 'minor', current: '1.4.5', candidates: ['1.4.6-rc.1'], options: { matchPreRelease: false }, want: '1.4.6-rc.1' },
  { name: 'highest wins whatever its pre-release', policy: 'minor', current: '1.4.5', candidates: ['1.4.6-rc.1', '1.4.6'], options: { matchPreRelease: false }, want: '1.4.6' },
  { name: 'pre-release moves to the release', policy: 'patch', current: '1.2.3-rc.1', candidates: ['1.2.3'], options: { matchPreRelease: false }, want: '1.2.3' },
  { name: 'still never a downgrade', policy: 'patch', current: '1.2.3', candidates: ['1.2.3-rc.9'], options: { matchPreRelease: false }, want: undefined },
]);

table('semver policies: non-version current tags', [
  { name: 'latest', policy: 'major', current: 'latest', candidates: TAGS, want: undefined },
  { name: 'branch name', policy: 'all', current: 'main', candidates: TAGS, want: undefined },
  { name: 'bare number', policy: 'all', current: '3050', candidates: ['3051', '1.0.0'], want: undefined },
]);

table('force', [
  { name: 're-push of a mutable tag', policy: 'force', current: 'latest', candidates: ['latest'], want: 'latest' },
  { name: 'webhook: another non-version tag', policy: 'force', current: 'latest', candidates: ['main'], want: 'main' },
  { name: 'webhook: a version from a non-version tag', policy: 'force', current: 'latest', candidates: ['1.2.3'], want: '1.2.3' },
  { name: 'a non-version current stays on itself when listed', policy: 'force', current: 'latest', candidates: ['1.0.0', 'latest', 'main'], want: 'latest' },
  { name: 'Keel #823: never a lower version', policy: 'force', current: '7.9.1-1-ubi8', candidates: ['3.0.0'], want: undefined },
  { name: 'Keel #823: 8.1.0 -> 8.0.0 refused', policy: 'force', current: '8.1.0', candidates: ['8.0.0'], want: undefined },
  { name: 'higher version', policy: 'force', current: '7.9.1-1-ubi8', candidates: ['3.0.0', '8.0.0', '7.9.1'], want: '8.0.0' },
  { name: 'same version re-push', policy: 'force', current: '8.1.0', candidates: ['8.1.0', '8.0.0'], want: '8.1.0' },
  { name: 'pre-release ordering', policy: 'force', current: '1.2.3-3', candidates: ['1.2.3-4'], want: '1.2.3-4' },
  { name: 'a version current ignores non-version tags', policy: 'force', current: '1.2.3', candidates: ['1.2.0', 'latest'], want: undefined },
  { name: 'matchTag: same tag', policy: 'force', current: 'latest', candidates: ['main', 'latest'], options: { matchTag: true }, want: 'latest' },
  { name: 'matchTag: other tag', policy: 'force', current: 'latest', candidates: ['main'], options: { matchTag: true }, want: undefined },
  { name: 'matchTag: higher version is not followed', policy: 'force', current: '1.2.3', candidates: ['1.2.4'], options: { matchTag: true }, want: undefined },
]);

table('glob', [
  { name: 'Keel: same tag is not an update', policy: 'glob:latest', current: 'latest', candidates: ['latest'], want: undefined },
  { name: 'Keel: no match', policy: 'glob:latest', current: 'latest', candidates: ['earliest'], want: undefined },
  { name: 'Keel: newer date', policy: 'glob:latest.*', current: 'latest.20241321', candidates: ['latest.20251321'], want: 'latest.20251321' },
  { name: 'Keel: older date', policy: 'glob:latest.*', current: 'latest.20251321', candidates: ['latest.20241321'], want: undefined },
  { name: 'Keel bug: 1.10 is newer than 1.9', policy: 'glob:1.*', current: '1.9', candidates: ['1.10', '1.8'], want: '1.10' },
  { name: 'Keel bug: build-10 after build-9', policy: 'glob:build-*', current: 'build-9', candidates: ['build-10', 'build-9', 'build-1'], want: 'build-10' },
  { name: 'only * is special', policy: 'glob:v?.[0-9]', current: 'x', candidates: ['v1.5', 'v?.[0-9]'], want: 'v?.[0-9]' },
  { name: 'anchored at both ends', policy: 'glob:app-*', current: 'app-1', candidates: ['myapp-2', 'app-2-debug'], want: 'app-2-debug' },
  { name: 'versions compare as versions', policy: 'glob:1.*', current: '1.2.0-rc.1', candidates: ['1.2.0'], want: '1.2.0' },
  { name: 'v-prefixed versions', policy: 'glob:v*', current: 'v1.9.0', candidates: ['v1.10.0'], want: 'v1.10.0' },
  { name: 'current outside the pattern: newest match', policy: 'glob:build-*', current: 'latest', candidates: ['build-2', 'build-10', 'latest'], want: 'build-10' },
  { name: 'non-version strings, natural order', policy: 'glob:main-*', current: 'main-a', candidates: ['main-b', 'main-a'], want: 'main-b' },
]);

table('regexp (Go syntax)', [
  { name: 'compare group, numeric (Keel bug: 10 after 9)', policy: 'regexp:^build-(?P<compare>\\d+)$', current: 'build-9', candidates: ['build-10', 'build-8'], want: 'build-10' },
  { name: 'Keel bug: never an older tag', policy: 'regexp:^build-(?P<compare>\\d+)$', current: 'build-10', candidates: ['build-9', 'build-8'], want: undefined },
  { name: 'compare group, version', policy: 'regexp:^(?P<compare>\\d+\\.\\d+\\.\\d+)-debian$', current: '1.9.0-debian', candidates: ['1.10.0-debian', '1.9.5-debian', '2.0.0-alpine'], want: '1.10.0-debian' },
  { name: 'compare group picks the key, not the whole tag', policy: 'regexp:^(?P<env>[a-z]+)-(?P<compare>\\d+)$', current: 'prod-5', candidates: ['alpha-9', 'zeta-6'], want: 'alpha-9' },
  { name: 'no compare group: whole tag, natural order', policy: 'regexp:^main-\\d+$', current: 'main-99', candidates: ['main-100', 'main-98'], want: 'main-100' },
  { name: 'unanchored match, like Go MatchString', policy: 'regexp:rc', current: 'x', candidates: ['1.0.0-rc.1', 'stable'], want: '1.0.0-rc.1' },
  { name: '(?i) flag at the start', policy: 'regexp:(?i)^release-(?P<compare>\\d+)$', current: 'release-1', candidates: ['RELEASE-2'], want: 'RELEASE-2' },
  { name: '\\z end of text', policy: 'regexp:^v\\d+\\z', current: 'v1', candidates: ['v2', 'v3x'], want: 'v2' },
  { name: 'POSIX class', policy: 'regexp:^[[:digit:]]+$', current: '9', candidates: ['10', 'a1'], want: '10' },
  { name: 'current outside the pattern: newest match', policy: 'regexp:^build-(?P<compare>\\d+)$', current: 'latest', candidates: ['build-2', 'build-11'], want: 'build-11' },
  { name: 'equal keys are not newer', policy: 'regexp:^(?P<compare>\\d+)-', current: '5-a', candidates: ['5-b'], want: undefined },
]);

table('never', [
  { name: 'never updates', policy: 'never', current: '1.0.0', candidates: ['2.0.0'], want: undefined },
  { name: 'not even a re-push', policy: 'never', current: 'latest', candidates: ['latest'], want: undefined },
]);

describe('parsePolicy', () => {
  for (const text of ['all', 'major', 'minor', 'patch', 'force', 'never']) {
    it(`parses ${text}`, () => {
      const policy = parsePolicy(text);
      expect(policy.kind).to.equal(text);
      expect(policy.text).to.equal(text);
    });
  }

  it('parses glob: and regexp: with their pattern and trims spaces', () => {
    expect(parsePolicy(' glob:build-* ')).to.include({ kind: 'glob', text: 'glob:build-*' });
    expect(parsePolicy('regexp:^v(?P<compare>\\d+)$')).to.include({ kind: 'regexp', text: 'regexp:^v(?P<compare>\\d+)$' });
  });

  it('keeps a colon inside a glob pattern (Keel rejects it)', () => {
    expect(parsePolicy('glob:a:*').choose('a:1', ['a:2'])).to.equal('a:2');
  });

  const bad: readonly [string, unknown, RegExp][] = [
    ['unknown name', 'minr', /^keel\.sh\/policy: unknown policy "minr" \(expected all\|major\|minor\|patch\|force\|never, glob:PATTERN or regexp:EXPR\)$/],
    ['wrong case', 'Major', /unknown policy "Major"/],
    ['empty', '', /^keel\.sh\/policy: empty policy/],
    ['not a string', 3, /^keel\.sh\/policy: /],
    ['empty glob', 'glob:', /empty glob pattern/],
    ['empty regexp', 'regexp:', /empty regexp/],
    ['broken regexp', 'regexp:(', /^keel\.sh\/policy: invalid regexp "\(": /],
    ['ungreedy flag', 'regexp:(?U)a+', /invalid regexp "\(\?U\)a\+": the \(\?U\) ungreedy flag/],
    ['inline flag later', 'regexp:a(?i)b', /inline flags \(\?i\) are supported only at the start/],
    ['flag group', 'regexp:(?i:a)b', /inline flags \(\?i: are supported only at the start/],
    ['back-reference', 'regexp:(a)\\1', /\\1 is not supported/],
    ['any byte', 'regexp:a\\C', /\\C \(any byte\)/],
    ['negated POSIX class', 'regexp:[[:^digit:]]', /negated POSIX class/],
    ['unknown POSIX class', 'regexp:[[:foo:]]', /unknown POSIX class/],
  ];
  for (const [name, text, message] of bad) {
    it(`rejects ${name} with an InputError naming the field`, () => {
      let thrown: unknown;
      try {
        parsePolicy(text, 'keel.sh/policy');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).to.be.instanceOf(InputError);
      expect((thrown as InputError).exitCode).to.equal(2);
      expect((thrown as InputError).where).to.equal('keel.sh/policy');
      expect((thrown as Error).message).to.match(message);
    });
  }
});

describe('Policy.watchMode', () => {
  const cases: readonly [string, string, ChooseOptions, string][] = [
    ['minor', '1.2.3', {}, 'tags'],
    ['minor', 'latest', {}, 'digest'],
    ['all', 'v1.2', {}, 'tags'],
    ['force', 'latest', {}, 'digest'],
    ['force', '1.2.3', {}, 'tags'],
    ['force', '1.2.3', { matchTag: true }, 'digest'],
    ['glob:build-*', 'build-1', {}, 'tags'],
    ['regexp:^v\\d+$', 'latest', {}, 'tags'],
    ['never', '1.2.3', {}, 'none'],
  ];
  for (const [policy, current, options, want] of cases) {
    it(`${policy} with ${current}${options.matchTag ? ' and matchTag' : ''} watches ${want}`, () => {
      expect(parsePolicy(policy).watchMode(current, options)).to.equal(want);
    });
  }
});
