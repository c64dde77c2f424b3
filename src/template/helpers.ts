import { stringify as yamlStringify } from 'yaml';
import { dnsLabel } from '../domain/index.js';

/** A helper could not work with the values it got; the renderer adds template and line. */
export class HelperFailure extends Error {}

/** What a helper knows about the call besides its arguments. */
export interface HelperCall {
  /** The values the template was rendered with (`$` in Go, `@root` in Handlebars) */
  readonly root: unknown;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
}

export interface HelperSpec {
  readonly fn: (args: readonly unknown[], call: HelperCall) => unknown;
  /** Arguments that may be missing without an error (`default` and friends test for them). */
  readonly lenient?: (index: number, count: number) => boolean;
  /** Allowed argument counts; checked before `fn` runs. */
  readonly arity: readonly [min: number, max: number];
}

const ALL = (): boolean => true;
const LAST = (index: number, count: number): boolean => index === count - 1;

/** Go's notion of an empty value (sprig's `empty`): false, 0, "", nil, and empty lists and maps. */
export function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

function text(value: unknown, what = 'argument'): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === undefined || value === null) return '';
  throw new HelperFailure(`expected a string as ${what}, got ${Array.isArray(value) ? 'a list' : 'a map'} (use toYaml or toJson)`);
}

function integer(value: unknown, what: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new HelperFailure(`expected a whole number as ${what}, got ${JSON.stringify(value)}`);
  return n;
}

/** `$NAME` / `${NAME}` from the template values first, then the environment (stencil's order). */
function expandEnv(input: string, call: HelperCall): string {
  const root = (call.root ?? {}) as Record<string, unknown>;
  return input.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const fromValues = Object.hasOwn(root, name) ? root[name] : undefined;
    if (fromValues !== undefined && fromValues !== null && typeof fromValues !== 'object') return String(fromValues);
    // Go's os.ExpandEnv: an unset variable is empty. stencil templates test absence this way
    // ({{ expandenv "$NVIDIA_VISIBLE_DEVICES" | empty }}); strictness stays for template values.
    return call.env[name] ?? '';
  });
}

const PRINTF_VERB = /%([%svdq])/g;

/** The first printf verb keelson does not implement (`%x`, `%5.2f`), or undefined. */
export function unsupportedPrintfVerb(format: string): string | undefined {
  for (const m of format.matchAll(/%([-+# 0-9.*]*)([a-zA-Z%]?)/g)) {
    if (m[1] !== '' || m[2] === '' || !'%svdq'.includes(m[2]!)) return m[0];
  }
  return undefined;
}

function printf(format: string, args: readonly unknown[]): string {
  const bad = unsupportedPrintfVerb(format);
  if (bad) throw new HelperFailure(`verb "${bad}" is not supported (use %s, %d, %v, %q or %%)`);
  let next = 0;
  const out = format.replace(PRINTF_VERB, (_m, verb: string) => {
    if (verb === '%') return '%';
    if (next >= args.length) throw new HelperFailure(`format "${format}" needs more arguments than the ${args.length} given`);
    const arg = args[next++];
    switch (verb) {
      case 'd':
        return String(integer(arg, `argument ${next}`));
      case 'q':
        return JSON.stringify(text(arg, `argument ${next}`));
      default:
        return typeof arg === 'object' && arg !== null ? JSON.stringify(arg) : text(arg);
    }
  });
  if (next < args.length) throw new HelperFailure(`format "${format}" uses ${next} of the ${args.length} arguments given`);
  return out;
}

/** Go's fmt.Sprint: operands are joined, with a space between two that are both not strings. */
function print(args: readonly unknown[]): string {
  let out = '';
  args.forEach((arg, i) => {
    if (i > 0 && typeof arg !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += typeof arg === 'object' && arg !== null ? JSON.stringify(arg) : text(arg);
  });
  return out;
}

function indent(width: unknown, value: unknown): string {
  const pad = ' '.repeat(Math.max(0, integer(width, 'the width')));
  return text(value).split('\n').map((line) => pad + line).join('\n');
}

/**
 * The helpers templates may call, with Go-template/sprig argument order: options first, the value
 * being worked on last, so `{{ .S | trunc 5 }}` and `{{ trunc 5 .S }}` agree.
 */
export const HELPERS: Readonly<Record<string, HelperSpec>> = {
  default: { arity: [1, 2], lenient: ALL, fn: ([fallback, given]) => (isEmpty(given) ? fallback : given) },
  empty: { arity: [1, 1], lenient: ALL, fn: ([value]) => isEmpty(value) },
  ternary: { arity: [3, 3], lenient: LAST, fn: ([ifTrue, ifFalse, cond]) => (isEmpty(cond) ? ifFalse : ifTrue) },
  expandenv: { arity: [1, 1], fn: ([s], call) => expandEnv(text(s), call) },
  b64enc: { arity: [1, 1], fn: ([s]) => Buffer.from(text(s), 'utf8').toString('base64') },
  replace: { arity: [3, 3], fn: ([from, to, s]) => text(s).replaceAll(text(from), text(to)) },
  now: { arity: [0, 0], fn: (_args, call) => call.now().toISOString() },
  toYaml: {
    arity: [1, 1],
    fn: ([value]) => (value === undefined ? '' : yamlStringify(value, { lineWidth: 0 }).replace(/\n$/, '')),
  },
  toJson: { arity: [1, 1], fn: ([value]) => JSON.stringify(value ?? null) },
  lower: { arity: [1, 1], fn: ([s]) => text(s).toLowerCase() },
  upper: { arity: [1, 1], fn: ([s]) => text(s).toUpperCase() },
  trim: { arity: [1, 1], fn: ([s]) => text(s).trim() },
  quote: { arity: [1, 1], fn: ([s]) => JSON.stringify(text(s)) },
  // sprig: a negative length keeps the end of the string
  trunc: {
    arity: [2, 2],
    fn: ([n, s]) => {
      const length = integer(n, 'the length');
      const str = text(s);
      return length >= 0 ? str.slice(0, length) : str.slice(Math.max(0, str.length + length));
    },
  },
  dnsLabel: {
    arity: [1, 2],
    fn: (args) => (args.length === 2 ? dnsLabel(text(args[1]), integer(args[0], 'the maximum length')) : dnsLabel(text(args[0]))),
  },
  indent: { arity: [2, 2], fn: ([n, s]) => indent(n, s) },
  nindent: { arity: [2, 2], fn: ([n, s]) => `\n${indent(n, s)}` },
  printf: { arity: [1, Infinity], fn: ([format, ...args]) => printf(text(format, 'the format'), args) },
  print: { arity: [0, Infinity], fn: (args) => print(args) },
  eq: { arity: [2, Infinity], fn: ([first, ...rest]) => rest.some((other) => other === first) },
  ne: { arity: [2, 2], fn: ([a, b]) => a !== b },
  // Go's and/or return an operand, not a boolean
  and: { arity: [1, Infinity], lenient: ALL, fn: (args) => args.find((a) => isEmpty(a)) ?? args[args.length - 1] },
  or: { arity: [1, Infinity], lenient: ALL, fn: (args) => args.find((a) => !isEmpty(a)) ?? args[args.length - 1] },
  not: { arity: [1, 1], lenient: ALL, fn: ([value]) => isEmpty(value) },
};

/** Handlebars' own block helpers and how they treat missing values. */
export const BUILTIN_LENIENCY: Readonly<Record<string, (index: number, count: number) => boolean>> = {
  if: ALL,
  unless: ALL,
  each: () => false,
  with: () => false,
  lookup: () => false,
  log: ALL,
};

/** What a call the template cannot make (unknown helper, wrong argument count) becomes once it
 * is reported: a helper that renders nothing, so rendering goes on and finds the other problems. */
export const SKIP_HELPER = '__skip';
