import { InvalidArgumentError, type Command } from 'commander';
import { parsePolicy } from '../../policy/index.js';
import { collect } from '../program.js';

interface PolicyFlags {
  readonly policy: string;
  readonly current: string;
  readonly candidates: string[];
  readonly matchTag?: boolean;
  readonly matchPreRelease?: boolean;
}

/** `true`/`false` for `--match-pre-release=false`; commander passes `true` for the bare flag. */
function parseFlag(value: string | boolean): boolean {
  if (value === true || value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidArgumentError('expected true or false');
}

/**
 * `keelson policy`: what a policy would do, without a registry or a cluster. Prints the tag
 * keelson would roll to, or nothing; a bad policy is exit 2 with a one-line error.
 */
export function registerPolicyCommand(program: Command): void {
  program
    .command('policy')
    .description('print the tag a Keel-style update policy would move to from --current, or nothing')
    .requiredOption('--policy <policy>', 'all|major|minor|patch|force|never, glob:PATTERN or regexp:EXPR (Go syntax)')
    .requiredOption('--current <tag>', 'the tag running now')
    .requiredOption('--candidates <tags>', 'comma-separated tags to choose from (repeatable)', collect, [])
    .option('--match-tag', 'force: only follow the current tag (keel.sh/matchTag)')
    .option('--match-pre-release [bool]', 'require the same pre-release kind (keel.sh/matchPreRelease)', parseFlag, true)
    .action((flags: PolicyFlags) => {
      const policy = parsePolicy(flags.policy, '--policy');
      const candidates = flags.candidates.flatMap((list) => list.split(',')).map((tag) => tag.trim()).filter(Boolean);
      const chosen = policy.choose(flags.current.trim(), candidates, {
        matchTag: flags.matchTag === true,
        matchPreRelease: flags.matchPreRelease !== false,
      });
      if (chosen !== undefined) process.stdout.write(`${chosen}\n`);
    });
}
