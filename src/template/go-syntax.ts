import { TemplateSyntaxError } from './errors.js';
import { HELPERS, SKIP_HELPER, unsupportedPrintfVerb } from './helpers.js';

/**
 * Translates the subset of Go's text/template that stencil templates use into Handlebars, so one
 * engine (with one strictness rule) renders both. Every action becomes one mustache holding the
 * same number of newlines as the original, so line numbers in errors stay those of the file the
 * user wrote. Whatever is outside the subset is rejected with the construct and its line, never
 * rendered differently.
 */

export interface GoTranslation {
  /** Handlebars source, line for line the same as the Go source */
  readonly source: string;
  /** Handlebars names of Go variables (`@v_b_1`, `v_e_2`) → the Go name (`$b`), for messages */
  readonly displayNames: ReadonlyMap<string, string>;
  /** String literals that cannot be written inline in Handlebars, read back by `__lit N` */
  readonly literals: readonly string[];
  /** Unknown functions and wrong argument counts: reported together with the missing values
   * that rendering finds, so one try shows every problem (the call renders as nothing) */
  readonly problems: readonly TemplateSyntaxError[];
}

const GO_MARKERS: readonly RegExp[] = [
  /^-\s/, // {{- trim
  /\s-$/, // trim -}}
  /^\s*\/\*/, // {{/* comment */}}
  /^\s*(end|range|if|with|define|template|block|break|continue)\b/,
  /(^|[\s(|,])\.([A-Za-z_]|\s|$|\))/, // .Field or .
  /(^|[\s(|,])\$/, // $var or $
  /[^|]\|[^|]/, // a pipeline (Handlebars' `as |x|` is taken out before testing)
];
const HANDLEBARS_MARKERS: readonly RegExp[] = [/^\s*([#^>!&{~]|\/(?!\*))/, /~$/];

export type TemplateSyntax = 'go' | 'handlebars';

/**
 * Which syntax a template is written in: Go when some action is Go-only (`.Field`, `$var`,
 * pipelines, `{{ end }}`, trim markers), Handlebars otherwise. Both at once is an error.
 */
export function detectSyntax(source: string, templateName: string): TemplateSyntax {
  let go: number | undefined;
  let hbs: number | undefined;
  for (const m of source.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
    const body = withoutStrings(m[1]!).replace(/\bas\s+\|[^|]*\|/g, 'as');
    const line = lineAt(source, m.index);
    if (go === undefined && GO_MARKERS.some((re) => re.test(body))) go = line;
    if (hbs === undefined && HANDLEBARS_MARKERS.some((re) => re.test(body))) hbs = line;
  }
  if (go !== undefined && hbs !== undefined) {
    throw new TemplateSyntaxError(templateName, Math.max(go, hbs),
      `mixes Go template syntax (line ${go}) with Handlebars syntax (line ${hbs}); write the whole file in one of them`);
  }
  return go !== undefined ? 'go' : 'handlebars';
}

function withoutStrings(body: string): string {
  return body.replace(/"(\\.|[^"\\])*"|`[^`]*`/g, '""');
}

function lineAt(source: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

type Token =
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'num'; readonly v: string }
  | { readonly t: 'field'; readonly parts: readonly string[] }
  | { readonly t: 'var'; readonly name: string; readonly parts: readonly string[] }
  | { readonly t: 'id'; readonly v: string }
  | { readonly t: '(' | ')' | '|' | ':=' | '=' | ',' };

/** A translated expression: a Handlebars path or literal, or a helper call. */
type Expr =
  | { readonly kind: 'atom'; readonly text: string; readonly literal?: string }
  | { readonly kind: 'call'; readonly fn: string; readonly args: readonly Expr[] };

interface Block {
  readonly kind: 'if' | 'each';
  readonly line: number;
}

const UNSUPPORTED_KEYWORDS: Readonly<Record<string, string>> = {
  with: 'use {{ if .X }} and the full path .X.Field instead',
  define: 'named templates are not supported; keep the template in one file',
  template: 'named templates are not supported; keep the template in one file',
  block: 'named templates are not supported; keep the template in one file',
  break: 'use {{ if }} inside the range instead',
  continue: 'use {{ if }} inside the range instead',
};

class Translator {
  private readonly out: string[] = [];
  private readonly blocks: Block[] = [];
  /** Visible Go variables per scope: Go name → Handlebars path */
  private readonly scopes: Map<string, string>[] = [new Map()];
  private readonly displayNames = new Map<string, string>();
  private readonly literals: string[] = [];
  private readonly problems: TemplateSyntaxError[] = [];
  private counter = 0;
  private line = 1;

  constructor(private readonly source: string, private readonly templateName: string) {}

  translate(): GoTranslation {
    const src = this.source;
    let i = 0;
    while (i < src.length) {
      const open = src.indexOf('{{', i);
      const text = src.slice(i, open < 0 ? src.length : open);
      // A backslash right before {{ escapes the mustache in Handlebars; Go has no such rule.
      this.out.push(open >= 0 && text.endsWith('\\') ? `${text}\\` : text);
      this.line += countNewlines(text);
      if (open < 0) break;
      const end = this.actionEnd(open);
      this.action(src.slice(open + 2, end - 2));
      this.line += countNewlines(src.slice(open, end));
      i = end;
    }
    const unclosed = this.blocks.at(-1);
    if (unclosed) {
      throw this.error(`{{ ${unclosed.kind === 'if' ? 'if' : 'range'} }} opened on line ${unclosed.line} has no {{ end }}`, undefined, unclosed.line);
    }
    return { source: this.out.join(''), displayNames: this.displayNames, literals: this.literals, problems: this.problems };
  }

  private error(detail: string, construct?: string, line = this.line): TemplateSyntaxError {
    return new TemplateSyntaxError(this.templateName, line, detail, construct);
  }

  /** Index just past the `}}` that closes the action opened at `open`, skipping quoted text. */
  private actionEnd(open: number): number {
    const src = this.source;
    const commentStart = /\{\{(-\s+)?\/\*/y;
    commentStart.lastIndex = open;
    const comment = commentStart.exec(src);
    if (comment) {
      const close = src.indexOf('*/', open + comment[0].length);
      const after = close < 0 ? null : /^\*\/(\s+-)?\}\}/.exec(src.slice(close));
      if (!after) throw this.error('unclosed comment: expected */}} (or */ -}})', '{{/*');
      return close + after[0].length;
    }
    for (let i = open + 2; i < src.length; i++) {
      const c = src[i];
      if (c === '"' || c === '`' || c === "'") {
        const close = c === '`' ? src.indexOf('`', i + 1) : findQuoteEnd(src, i, c);
        if (close < 0) break;
        i = close;
      } else if (c === '}' && src[i + 1] === '}') {
        return i + 2;
      }
    }
    throw this.error('unclosed action: expected }}', '{{');
  }

  private action(raw: string): void {
    const trimLeft = /^-[ \t\r\n]/.test(raw);
    const trimRight = /[ \t\r\n]-$/.test(raw);
    const body = raw.slice(trimLeft ? 1 : 0, trimRight ? raw.length - 1 : raw.length).trim();
    const open = trimLeft ? '{{~' : '{{';
    const close = '\n'.repeat(countNewlines(raw)) + (trimRight ? '~}}' : '}}');
    if (body.startsWith('/*')) {
      this.out.push(`${open}!--${'\n'.repeat(countNewlines(raw))}--${trimRight ? '~' : ''}}}`);
      return;
    }
    const tokens = this.tokenize(body);
    const first = tokens[0];
    if (!first) throw this.error('empty action {{ }}', '{{ }}');
    const keyword = first.t === 'id' ? first.v : undefined;
    if (keyword && keyword in UNSUPPORTED_KEYWORDS) {
      throw this.error(`"${keyword}" is not supported: ${UNSUPPORTED_KEYWORDS[keyword]}`, keyword);
    }
    switch (keyword) {
      case 'if': {
        const cond = this.expression(tokens.slice(1), 'if');
        this.blocks.push({ kind: 'if', line: this.line });
        this.scopes.push(new Map());
        this.out.push(`${open}#if ${argument(cond)}${close}`);
        return;
      }
      case 'else': {
        const block = this.blocks.at(-1);
        if (!block) throw this.error('{{ else }} outside {{ if }} or {{ range }}', 'else');
        this.scopes.pop();
        this.scopes.push(new Map());
        const rest = tokens.slice(1);
        if (rest.length === 0) {
          this.out.push(`${open}else${close}`);
          return;
        }
        const next = rest[0]!;
        if (next.t === 'id' && next.v === 'if' && block.kind === 'if') {
          this.out.push(`${open}else if ${argument(this.expression(rest.slice(1), 'else if'))}${close}`);
          return;
        }
        const what = next.t === 'id' ? `else ${next.v}` : 'else';
        throw this.error(`"{{ ${what} }}" is not supported here`, what);
      }
      case 'end': {
        if (tokens.length > 1) throw this.error('{{ end }} takes nothing after it', 'end');
        const block = this.blocks.pop();
        if (!block) throw this.error('{{ end }} without an open {{ if }} or {{ range }}', 'end');
        this.scopes.pop();
        this.out.push(`${open}/${block.kind}${close}`);
        return;
      }
      case 'range': {
        this.out.push(`${open}${this.range(tokens.slice(1))}${close}`);
        return;
      }
    }
    if (first.t === 'var' && first.parts.length === 0 && (tokens[1]?.t === ':=' || tokens[1]?.t === '=')) {
      if (tokens[1].t === '=') {
        throw this.error(`assigning to an existing variable ("$${first.name} =") is not supported; declare a new one with :=`, '=');
      }
      if (first.name === '') throw this.error('cannot declare "$"', ':=');
      const value = this.expression(tokens.slice(2), `$${first.name} :=`);
      const name = this.declare(first.name, 'data');
      this.out.push(`${open}__let "${name}" ${argument(value)}${close}`);
      return;
    }
    this.out.push(`${open}${topLevel(this.expression(tokens, 'action'))}${close}`);
  }

  /** `range PIPE`, `range $v := PIPE`, `range $i, $v := PIPE` → `#each X as |v i|` */
  private range(tokens: readonly Token[]): string {
    const line = this.line;
    let vars: string[] = [];
    let rest = tokens;
    const assign = tokens.findIndex((t) => t.t === ':=');
    if (assign >= 0) {
      const declared = tokens.slice(0, assign);
      const names = declared.filter((t): t is Extract<Token, { t: 'var' }> => t.t === 'var' && t.parts.length === 0 && t.name !== '');
      const shapeOk = names.length === 1 ? declared.length === 1 : names.length === 2 && declared.length === 3 && declared[1]!.t === ',';
      if (!shapeOk) throw this.error('expected {{ range $v := ... }} or {{ range $i, $v := ... }}', 'range');
      vars = names.map((n) => n.name);
      rest = tokens.slice(assign + 1);
    }
    const list = this.expression(rest, 'range');
    this.blocks.push({ kind: 'each', line });
    this.scopes.push(new Map());
    // Handlebars passes [value, index]; Go declares [index, value] or [value]
    const params = vars.length === 2 ? [vars[1]!, vars[0]!] : vars;
    const names = params.map((v) => this.declare(v, 'blockParam'));
    return `#each ${argument(list)}${names.length ? ` as |${names.join(' ')}|` : ''}`;
  }

  private declare(goName: string, kind: 'data' | 'blockParam'): string {
    const name = `v_${goName}_${++this.counter}`;
    const path = kind === 'data' ? `@${name}` : name;
    this.scopes.at(-1)!.set(goName, path);
    this.displayNames.set(name, `$${goName}`);
    return name;
  }

  private lookupVariable(goName: string): string {
    if (goName === '') return '@root';
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const path = this.scopes[i]!.get(goName);
      if (path) return path;
    }
    throw this.error(`undefined variable "$${goName}"`, `$${goName}`);
  }

  private expression(tokens: readonly Token[], where: string): Expr {
    if (tokens.length === 0) throw this.error(`missing value after "${where}"`, where);
    const parser = { tokens, pos: 0 };
    const expr = this.pipeline(parser);
    if (parser.pos < tokens.length) throw this.error(`unexpected "${show(tokens[parser.pos]!)}" in ${where}`, show(tokens[parser.pos]!));
    return expr;
  }

  /** `cmd | fn a | fn b` → fn b (fn a (cmd)): Go passes the previous result as the last argument */
  private pipeline(p: { tokens: readonly Token[]; pos: number }): Expr {
    let result = this.command(p, undefined);
    while (p.tokens[p.pos]?.t === '|') {
      p.pos++;
      result = this.command(p, result);
    }
    return result;
  }

  private command(p: { tokens: readonly Token[]; pos: number }, piped: Expr | undefined): Expr {
    const head = p.tokens[p.pos];
    if (!head || head.t === '|' || head.t === ')') throw this.error('missing command in pipeline', '|');
    if (head.t === 'id' && !['true', 'false', 'nil'].includes(head.v)) {
      p.pos++;
      const args: Expr[] = [];
      while (p.pos < p.tokens.length && !['|', ')'].includes(p.tokens[p.pos]!.t)) args.push(this.operand(p));
      if (piped) args.push(piped);
      return this.call(head.v, args);
    }
    const value = this.operand(p);
    const next = p.tokens[p.pos];
    if (next && next.t !== '|' && next.t !== ')') throw this.error(`cannot give arguments to a value that is not a function: "${show(next)}"`, show(next));
    if (piped) throw this.error('a pipeline stage must be a function, not a value', '|');
    return value;
  }

  private call(fn: string, args: Expr[]): Expr {
    const spec = HELPERS[fn];
    if (!spec) {
      this.problems.push(this.error(`unsupported function "${fn}" (supported: ${Object.keys(HELPERS).join(', ')})`, fn));
      return { kind: 'call', fn: SKIP_HELPER, args };
    }
    const [min, max] = spec.arity;
    if (args.length < min || args.length > max) {
      this.problems.push(this.error(`"${fn}" takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`, fn));
      return { kind: 'call', fn: SKIP_HELPER, args };
    }
    if (fn === 'printf' && args[0]?.kind === 'atom' && args[0].literal !== undefined) {
      const bad = unsupportedPrintfVerb(args[0].literal);
      if (bad) throw this.error(`printf verb "${bad}" is not supported (use %s, %d, %v, %q or %%)`, `printf "${bad}"`);
    }
    return { kind: 'call', fn, args };
  }

  private operand(p: { tokens: readonly Token[]; pos: number }): Expr {
    const tok = p.tokens[p.pos++]!;
    switch (tok.t) {
      case 'str':
        return this.stringLiteral(tok.v);
      case 'num':
        return { kind: 'atom', text: tok.v };
      case 'field':
        // this.X: never mistaken for a helper (Go's .now is a value, not the now function)
        return { kind: 'atom', text: tok.parts.length ? `this.${tok.parts.join('.')}` : 'this' };
      case 'var':
        return { kind: 'atom', text: [this.lookupVariable(tok.name), ...tok.parts].join('.') };
      case 'id':
        if (tok.v === 'nil') return { kind: 'atom', text: 'null' };
        if (tok.v === 'true' || tok.v === 'false') return { kind: 'atom', text: tok.v };
        // a function used as an argument without parentheses: Go calls it with no arguments
        return this.call(tok.v, []);
      case '(': {
        const inner = this.pipeline(p);
        if (p.tokens[p.pos]?.t !== ')') throw this.error('missing ")"', '(');
        p.pos++;
        return inner;
      }
      default:
        throw this.error(`unexpected "${show(tok)}"`, show(tok));
    }
  }

  private stringLiteral(value: string): Expr {
    // Handlebars string literals know only \" as an escape and would add lines for newlines
    if (/[\n\r"]|\\$/.test(value)) {
      this.literals.push(value);
      return { kind: 'call', fn: '__lit', args: [{ kind: 'atom', text: String(this.literals.length - 1) }] };
    }
    return { kind: 'atom', text: `"${value}"`, literal: value };
  }

  private tokenize(body: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    const ident = /[A-Za-z_][A-Za-z0-9_]*/y;
    const chain = (): string[] => {
      const parts: string[] = [];
      while (body[i] === '.') {
        ident.lastIndex = i + 1;
        const m = ident.exec(body);
        if (!m) break;
        parts.push(m[0]);
        i = ident.lastIndex;
      }
      return parts;
    };
    while (i < body.length) {
      const c = body[i]!;
      if (/\s/.test(c)) {
        i++;
      } else if (c === '"') {
        const end = findQuoteEnd(body, i, '"');
        if (end < 0) throw this.error('unterminated string', '"');
        tokens.push({ t: 'str', v: this.unquote(body.slice(i, end + 1)) });
        i = end + 1;
      } else if (c === '`') {
        const end = body.indexOf('`', i + 1);
        if (end < 0) throw this.error('unterminated raw string', '`');
        tokens.push({ t: 'str', v: body.slice(i + 1, end) });
        i = end + 1;
      } else if (c === "'") {
        throw this.error('character constants are not supported; use a "string"', "'");
      } else if (c === ':' && body[i + 1] === '=') {
        tokens.push({ t: ':=' });
        i += 2;
      } else if (c === '(' || c === ')' || c === '|' || c === '=' || c === ',') {
        if (c === ')' && body[i + 1] === '.') throw this.error('reading a field of a parenthesized pipeline is not supported', ').');
        tokens.push({ t: c });
        i++;
      } else if (c === '.') {
        if (/[0-9]/.test(body[i + 1] ?? '')) throw this.error(`unsupported number "${body.slice(i).split(/\s/)[0]}"`, 'number');
        const start = i;
        const parts = chain();
        if (parts.length === 0) i++;
        if (body[i] === '.' || (i < body.length && /[^\s()|,]/.test(body[i]!))) {
          throw this.error(`cannot read "${body.slice(start).split(/[\s()|]/)[0]}"`, body.slice(start).split(/[\s()|]/)[0]);
        }
        tokens.push({ t: 'field', parts });
      } else if (c === '$') {
        ident.lastIndex = i + 1;
        const m = ident.exec(body);
        const name = m ? m[0] : '';
        i = m ? ident.lastIndex : i + 1;
        tokens.push({ t: 'var', name, parts: chain() });
      } else if (/[-+0-9]/.test(c)) {
        const m = /^[-+]?[0-9][0-9_.a-zA-Z+-]*/.exec(body.slice(i));
        const num = m ? m[0] : c;
        if (!/^-?[0-9]+(\.[0-9]+)?$/.test(num)) throw this.error(`unsupported number "${num}"`, num);
        tokens.push({ t: 'num', v: num });
        i += num.length;
      } else {
        ident.lastIndex = i;
        const m = ident.exec(body);
        if (!m) throw this.error(`unexpected "${c}"`, c);
        tokens.push({ t: 'id', v: m[0] });
        i = ident.lastIndex;
        if (body[i] === '.') throw this.error(`reading a field of "${m[0]}" is not supported`, m[0]);
      }
    }
    return tokens;
  }

  private unquote(quoted: string): string {
    try {
      return JSON.parse(quoted) as string;
    } catch {
      throw this.error(`unsupported escape in string ${quoted} (use \\n, \\t, \\", \\\\ or \\uXXXX)`, quoted);
    }
  }
}

function findQuoteEnd(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
    else if (text[i] === '\n') return -1;
  }
  return -1;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

function show(tok: Token): string {
  switch (tok.t) {
    case 'str':
      return JSON.stringify(tok.v);
    case 'num':
    case 'id':
      return tok.v;
    case 'field':
      return `.${tok.parts.join('.')}`;
    case 'var':
      return [`$${tok.name}`, ...tok.parts].join('.');
    default:
      return tok.t;
  }
}

/** As a helper argument: calls become sub-expressions. */
function argument(expr: Expr): string {
  if (expr.kind === 'atom') return expr.text;
  return expr.args.length ? `(${expr.fn} ${expr.args.map(argument).join(' ')})` : `(${expr.fn})`;
}

/** As the whole mustache: the outermost call needs no parentheses. */
function topLevel(expr: Expr): string {
  // Handlebars reads {{"x"}} as a lookup of the key "x"; Go prints the literal
  if (expr.kind === 'atom') return /^[a-z@]/i.test(expr.text) && !['true', 'false', 'null'].includes(expr.text) ? expr.text : `print ${expr.text}`;
  return [expr.fn, ...expr.args.map(argument)].join(' ');
}

/** Go template source → equivalent Handlebars source (see GoTranslation). */
export function translateGoTemplate(source: string, templateName: string): GoTranslation {
  return new Translator(source, templateName).translate();
}
