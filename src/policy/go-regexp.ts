/**
 * Keel users write `regexp:` policies in Go (RE2) syntax. Most of it means the same in
 * JavaScript; this translates the parts that are spelled differently and rejects the parts that
 * would silently mean something else, so a pattern either works as written or fails loudly.
 *
 * Translated: `(?P<name>` named groups, leading inline flags `(?i)` `(?m)` `(?s)`, `\z` and `\A`,
 * `\Q...\E` literals, POSIX classes `[[:alpha:]]`, `\pL` and `\p{Greek}`, `\x{1F600}`, `\a`, a `]`
 * first in a class (`[]a]`). Rejected: the `U` (ungreedy) flag, inline flags or flag groups
 * after the start, `\C`, numbered escapes (`\1`: Go has no back-references, JS would read one),
 * negated POSIX classes.
 */
export interface TranslatedRegexp {
  readonly source: string;
  readonly flags: string;
}

/** Why a Go pattern cannot be used; the message is written for the user. */
export class GoRegexpError extends Error {
  override readonly name = 'GoRegexpError';
}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

// Unicode general categories JS accepts bare in \p{...}; any other Go name is a script.
const GENERAL_CATEGORIES = new Set([
  'L', 'Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'M', 'Mn', 'Mc', 'Me', 'N', 'Nd', 'Nl', 'No', 'P', 'Pc', 'Pd', 'Ps',
  'Pe', 'Pi', 'Pf', 'Po', 'S', 'Sm', 'Sc', 'Sk', 'So', 'Z', 'Zs', 'Zl', 'Zp', 'C', 'Cc', 'Cf', 'Cs', 'Co', 'Cn',
]);

const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''));

export function translateGoRegexp(expr: string): TranslatedRegexp {
  let i = 0;
  const flags = new Set<string>();
  let unicode = false;

  // Leading `(?flags)` groups become RegExp flags; `-x` clears a flag that is off anyway.
  for (let m = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)/.exec(expr); m; m = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)/.exec(expr.slice(i))) {
    for (const flag of `${m[1] ?? ''}${m[2] ?? ''}`) {
      if (flag === 'U') throw new GoRegexpError('the (?U) ungreedy flag has no JavaScript equivalent; make the repetitions lazy with *? or +? instead');
      if (!'ims'.includes(flag)) throw new GoRegexpError(`unknown flag "${flag}" in ${m[0]}`);
    }
    for (const flag of m[1] ?? '') flags.add(flag);
    i += m[0].length;
  }

  let out = '';
  let inClass = false;
  let classStart = -1; // index in `expr` just after `[` or `[^`
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '\\') {
      const next = expr[i + 1];
      if (next === undefined) throw new GoRegexpError('trailing backslash');
      const escape = translateEscape(expr, i, inClass);
      out += escape.text;
      unicode ||= escape.unicode;
      i = escape.end;
      continue;
    }
    if (inClass) {
      if (c === '[' && expr[i + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(expr.slice(i));
        if (m) {
          if (m[1]) throw new GoRegexpError(`negated POSIX class [:^${m[2]}:] is not supported; write the negated class out, e.g. [^0-9]`);
          const ranges = POSIX_CLASSES[m[2]!];
          if (!ranges) throw new GoRegexpError(`unknown POSIX class [:${m[2]}:]`);
          out += ranges;
          i += m[0].length;
          continue;
        }
      }
      if (c === ']' && i === classStart) {
        out += '\\]'; // Go: a `]` right after `[` or `[^` is a literal; JS would close an empty class
        i++;
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      const negated = expr[i + 1] === '^';
      out += negated ? '[^' : '[';
      i += negated ? 2 : 1;
      classStart = i;
      continue;
    }
    if (c === '(' && expr[i + 1] === '?') {
      const rest = expr.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (/^[a-zA-Z-]*[):]/.test(rest) && !rest.startsWith(':')) {
        const m = /^[a-zA-Z-]*[):]/.exec(rest)!;
        throw new GoRegexpError(`inline flags (?${m[0]} are supported only at the start of the pattern`);
      }
    }
    out += c;
    i++;
  }
  if (inClass) throw new GoRegexpError('missing closing ] of a character class');
  if (unicode) flags.add('u');
  return { source: out, flags: [...flags].sort().join('') };
}

function translateEscape(expr: string, at: number, inClass: boolean): { text: string; end: number; unicode: boolean } {
  const c = expr[at + 1]!;
  const plain = (text: string) => ({ text, end: at + 2, unicode: false });
  switch (c) {
    case 'z':
      if (inClass) throw new GoRegexpError('\\z is not allowed inside a character class');
      return plain('(?![\\s\\S])');
    case 'A':
      if (inClass) throw new GoRegexpError('\\A is not allowed inside a character class');
      return plain('(?<![\\s\\S])');
    case 'a':
      return plain('\\x07');
    case 'C':
      throw new GoRegexpError('\\C (any byte) has no JavaScript equivalent');
    case 'Q': {
      const stop = expr.indexOf('\\E', at + 2);
      const literal = expr.slice(at + 2, stop === -1 ? undefined : stop);
      const text = [...literal].map((ch) => (JS_SYNTAX.has(ch) || ch === '-' ? `\\${ch}` : ch)).join('');
      return { text, end: stop === -1 ? expr.length : stop + 2, unicode: false };
    }
    case 'E':
      return { text: '', end: at + 2, unicode: false }; // a stray \E is ignored by Go too
    case 'p':
    case 'P': {
      let name: string;
      let end: number;
      if (expr[at + 2] === '{') {
        const close = expr.indexOf('}', at + 3);
        if (close === -1) throw new GoRegexpError(`missing } in \\${c}{`);
        name = expr.slice(at + 3, close);
        end = close + 1;
      } else {
        name = expr[at + 2] ?? '';
        end = at + 3;
      }
      let negate = c === 'P';
      if (name.startsWith('^')) {
        negate = !negate;
        name = name.slice(1);
      }
      if (!/^[A-Za-z_]+$/.test(name)) throw new GoRegexpError(`invalid Unicode class \\${c}{${name}}`);
      const property = name === 'Any' ? 'Any' : GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
      return { text: `\\${negate ? 'P' : 'p'}{${property}}`, end, unicode: true };
    }
    case 'x': {
      if (expr[at + 2] !== '{') return plain('\\x');
      const close = expr.indexOf('}', at + 3);
      const hex = close === -1 ? '' : expr.slice(at + 3, close);
      if (!/^[0-9A-Fa-f]{1,6}$/.test(hex)) throw new GoRegexpError(`invalid escape \\x{${hex}}`);
      return { text: `\\u{${hex}}`, end: close + 1, unicode: true };
    }
    default:
      break;
  }
  if (/[0-9]/.test(c)) {
    throw new GoRegexpError(`\\${c} is not supported (Go has no back-references; JavaScript would read one)`);
  }
  if (/[A-Za-z]/.test(c)) return plain(`\\${c}`); // \d \w \s \b \B \n \t \r \f \v and friends
  // Go lets any punctuation be escaped; unicode-mode JS only syntax characters (and `-` in a class).
  if (JS_SYNTAX.has(c) || (c === '-' && inClass)) return plain(`\\${c}`);
  return plain(c);
}
