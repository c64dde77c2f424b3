import { InputError } from '../errors.js';
import { ForcePolicy } from './force-policy.js';
import { GlobPolicy } from './glob-policy.js';
import { GoRegexpError, translateGoRegexp } from './go-regexp.js';
import { NeverPolicy } from './never-policy.js';
import { RegexpPolicy } from './regexp-policy.js';
import { POLICY_EXPECTED, PolicyText } from './schema.js';
import { SemverPolicy } from './semver-policy.js';
import type { Policy } from './types.js';

/**
 * Parses a policy once, at the edge. `field` names where the text came from
 * (`keel.sh/policy`, `--policy`) and starts the message of the InputError thrown for an unknown
 * policy, an empty pattern or a regexp that cannot be used.
 */
export function parsePolicy(text: unknown, field = 'policy'): Policy {
  const parsed = PolicyText.safeParse(text);
  if (!parsed.success) throw new InputError(field, parsed.error.issues[0]?.message ?? POLICY_EXPECTED);
  const policy = parsed.data;
  switch (policy) {
    case 'all':
    case 'major':
    case 'minor':
    case 'patch':
      return new SemverPolicy(policy);
    case 'force':
      return new ForcePolicy();
    case 'never':
      return new NeverPolicy();
  }
  if (policy.startsWith('glob:')) {
    const pattern = policy.slice('glob:'.length);
    if (!pattern) throw new InputError(field, `empty glob pattern in policy "${policy}" (expected e.g. glob:build-*)`);
    return new GlobPolicy(pattern, policy);
  }
  if (policy.startsWith('regexp:')) {
    const expression = policy.slice('regexp:'.length);
    if (!expression) throw new InputError(field, `empty regexp in policy "${policy}" (expected e.g. regexp:^v(?P<compare>\\d+)$)`);
    return new RegexpPolicy(expression, compileGoRegexp(expression, field), policy);
  }
  throw new InputError(field, `unknown policy "${policy}" (${POLICY_EXPECTED})`);
}

function compileGoRegexp(expression: string, field: string): RegExp {
  try {
    const { source, flags } = translateGoRegexp(expression);
    return new RegExp(source, flags);
  } catch (error) {
    if (!(error instanceof GoRegexpError || error instanceof SyntaxError)) throw error;
    const reason = error.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    throw new InputError(field, `invalid regexp "${expression}": ${reason}`, { cause: error });
  }
}
