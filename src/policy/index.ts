export { parsePolicy } from './parse.js';
export type { ChooseOptions, Policy, PolicyKind, WatchMode } from './types.js';
export { BooleanText, POLICY_EXPECTED, PolicyText } from './schema.js';
export { compareTags, naturalCompare, parseVersion, type TagVersion } from './version.js';
export { translateGoRegexp, GoRegexpError, type TranslatedRegexp } from './go-regexp.js';
