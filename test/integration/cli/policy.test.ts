import { expect } from 'chai';
import { runKeelson, type CliResult } from '../../support/cli.js';

/** Runs the real CLI entry point, as a user would. */
function keelson(...args: string[]): Promise<CliResult> {
  return runKeelson(args);
}

describe('keelson policy', function () {
  this.timeout(60_000);

  const cases: readonly [string, string[], string][] = [
    ['minor picks the newest minor', ['--policy', 'minor', '--current', '1.4.5', '--candidates', '1.4.6,1.5.0,2.0.0,latest'], '1.5.0\n'],
    ['repeated --candidates add up', ['--policy', 'patch', '--current', 'v1.4.5', '--candidates', '1.4.6', '--candidates', 'v1.4.7'], 'v1.4.7\n'],
    ['pre-releases need --match-pre-release=false', ['--policy', 'minor', '--current', '1.0.0', '--candidates', '1.0.1-rc.1'], ''],
    ['--match-pre-release=false as written', ['--policy', 'minor', '--current', '1.0.0', '--candidates', '1.0.1-rc.1', '--match-pre-release=false'], '1.0.1-rc.1\n'],
    ['bare --match-pre-release means true', ['--policy', 'minor', '--current', '1.0.0', '--candidates', '1.0.1-rc.1', '--match-pre-release'], ''],
    ['force follows a tag that is not a version', ['--policy', 'force', '--current', 'main', '--candidates', 'main'], 'main\n'],
    ['regexp in Go syntax', ['--policy', 'regexp:^build-(?P<compare>\\d+)$', '--current', 'build-9', '--candidates', 'build-10,build-8'], 'build-10\n'],
  ];
  for (const [name, args, stdout] of cases) {
    it(name, async () => {
      const result = await keelson('policy', ...args);
      expect(result.stderr).to.equal('');
      expect(result.status).to.equal(0);
      expect(result.stdout).to.equal(stdout);
    });
  }

  const failures: readonly [string, string[], RegExp][] = [
    ['an unknown policy', ['--policy', 'minr', '--current', '1.0.0', '--candidates', '1.1.0'], /^keelson: --policy: unknown policy "minr" \(expected all\|major\|minor\|patch\|force\|never, glob:PATTERN or regexp:EXPR\)\n$/],
    ['an invalid regexp', ['--policy', 'regexp:(?U)a+', '--current', 'a', '--candidates', 'aa'], /^keelson: --policy: invalid regexp "\(\?U\)a\+": .*\n$/],
    ['a --current that is not a version under a semver policy', ['--policy', 'minor', '--current', 'notsemver', '--candidates', '1.1.0'], /^keelson: --current: "notsemver" is not a version \(the minor policy compares versions/],
    ['a bad --match-pre-release value', ['--policy', 'minor', '--current', '1.0.0', '--candidates', '1.1.0', '--match-pre-release=maybe'], /^keelson: .*expected true or false\n$/],
  ];
  for (const [name, args, stderr] of failures) {
    it(`exits 2 with one line for ${name}`, async () => {
      const result = await keelson('policy', ...args);
      expect(result.status).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(stderr);
      expect(result.stderr.trim().split('\n')).to.have.length(1);
    });
  }
});
