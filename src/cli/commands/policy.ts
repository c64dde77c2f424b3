import { InvalidArgumentError, type Command } from 'commander';
import { InputError } from '../../errors.js';
import { parsePolicy, parseVersion, type PolicyKind } from '../../policy/index.js';
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

const SEMVER_KINDS: ReadonlySet<PolicyKind> = new Set(['all', 'major', 'minor', 'patch']);

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
      const current = flags.current.trim();
      // The daemon follows the digest of a workload on a non-version tag (as Keel); asked here,
      // such a tag is a typo more likely than a question, and an empty answer would hide it.
      if (SEMVER_KINDS.has(policy.kind) && !parseVersion(current)) {
        throw new InputError('--current', `"${current}" is not a version (the ${policy.kind} policy compares versions such as 1.4.2 or v1.4; a workload on another tag follows that tag's digest)`);
      }
      const candidates = flags.candidates.flatMap((list) => list.split(',')).map((tag) => tag.trim()).filter(Boolean);
      const chosen = policy.choose(current, candidates, {
        matchTag: flags.matchTag === true,
        matchPreRelease: flags.matchPreRelease !== false,
      });
      if (chosen !== undefined) process.stdout.write(`${chosen}\n`);
    });
}
