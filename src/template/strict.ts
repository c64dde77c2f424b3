import type {} from 'handlebars';
import { TemplateSyntaxError } from './errors.js';
import { SKIP_HELPER } from './helpers.js';

/**
 * Makes a parsed Handlebars template strict about missing values. Handlebars' own `strict` mode
 * reports only the last path segment and also fails `{{#if .Missing}}`, so instead every path whose
 * value is printed or passed to a helper is wrapped in `__value`, which fails naming the whole key
 * and its line — except the arguments that `default`, `empty`, `if` and friends exist to test.
 */

export interface StrictOptions {
  readonly templateName: string;
  /** Helper names a template may call */
  readonly isHelper: (name: string) => boolean;
  /** Allowed argument counts of a helper, when it has a limit */
  readonly arity: (name: string) => readonly [number, number] | undefined;
  /** True when argument `index` of `count` may be missing */
  readonly lenient: (name: string, index: number, count: number) => boolean;
  /** Handlebars names of Go variables → their Go names, for messages */
  readonly displayNames: ReadonlyMap<string, string>;
}

export interface StrictResult {
  /** `NAME` of every `Env.NAME` the template reads: only those are taken from the environment */
  readonly envNames: ReadonlySet<string>;
  /** Unknown helpers and wrong argument counts; each call was replaced by SKIP_HELPER, so the
   * template still renders and its missing values are found in the same try */
  readonly problems: readonly TemplateSyntaxError[];
}

/** Helpers added by the transform and the Go translation, never written by users. */
export const INTERNAL_HELPERS = ['__value', '__let', '__lit', SKIP_HELPER] as const;

type Node = hbs.AST.Node;
type Path = hbs.AST.PathExpression;
type Call = { type: string; path: Path; params: hbs.AST.Expression[]; hash: hbs.AST.Hash; loc: hbs.AST.SourceLocation };

class StrictTransform {
  readonly envNames = new Set<string>();
  readonly problems: TemplateSyntaxError[] = [];
  private readonly blockParams: string[][] = [];

  constructor(private readonly options: StrictOptions) {}

  program(program: hbs.AST.Program): void {
    for (const statement of program.body) this.statement(statement);
  }

  private error(node: Node, detail: string, construct?: string): TemplateSyntaxError {
    return new TemplateSyntaxError(this.options.templateName, node.loc?.start.line ?? 1, detail, construct);
  }

  private statement(node: hbs.AST.Statement): void {
    switch (node.type) {
      case 'MustacheStatement':
        return this.mustache(node as hbs.AST.MustacheStatement);
      case 'BlockStatement':
        return this.block(node as hbs.AST.BlockStatement);
      case 'ContentStatement':
      case 'CommentStatement':
        return;
      case 'PartialStatement':
      case 'PartialBlockStatement':
        throw this.error(node, 'partials ({{> name}}) are not supported; keep the template in one file', '{{>');
      default:
        throw this.error(node, `${node.type} is not supported`, node.type);
    }
  }

  private mustache(node: hbs.AST.MustacheStatement): void {
    if (node.path.type !== 'PathExpression') return;
    const call = node as unknown as Call;
    if (node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0 || this.isHelperName(call.path)) {
      this.call(call);
      return;
    }
    const wrapped = this.wrap(call.path, true);
    call.path = wrapped.path;
    call.params = wrapped.params;
    call.hash = wrapped.hash;
  }

  private block(node: hbs.AST.BlockStatement): void {
    const call = node as unknown as Call;
    if (this.isHelperName(call.path) || node.params.length > 0) this.call(call);
    else this.collectEnv(call.path); // {{#Section}}: a test, like {{#if Section}}
    if (node.program) {
      this.blockParams.push(node.program.blockParams ?? []);
      this.program(node.program);
      this.blockParams.pop();
    }
    if (node.inverse) this.program(node.inverse);
  }

  private call(node: Call): void {
    const name = node.path.original;
    const count = node.params.length;
    const arity = this.options.arity(name);
    let problem: string | undefined;
    if (!this.isHelperName(node.path)) {
      problem = `unknown helper "${name}"`;
    } else if (arity && (count < arity[0] || count > arity[1])) {
      const expected = arity[0] === arity[1] ? `${arity[0]}` : arity[1] === Infinity ? `at least ${arity[0]}` : `${arity[0]} to ${arity[1]}`;
      problem = `"${name}" takes ${expected} arguments, got ${count}`;
    }
    if (problem !== undefined) {
      this.problems.push(this.error(node, problem, name));
      node.path = { ...node.path, parts: [SKIP_HELPER], original: SKIP_HELPER } as unknown as Path;
    }
    node.params = node.params.map((param, index) => this.argument(param, problem !== undefined || !this.options.lenient(name, index, count)));
    for (const pair of node.hash?.pairs ?? []) pair.value = this.argument(pair.value, true);
  }

  private argument(param: hbs.AST.Expression, strict: boolean): hbs.AST.Expression {
    if (param.type === 'SubExpression') {
      this.call(param as unknown as Call);
      return param;
    }
    if (param.type !== 'PathExpression') return param;
    return strict ? this.wrap(param as Path, false) : (this.collectEnv(param as Path), param);
  }

  private isHelperName(path: Path): boolean {
    const [name] = path.parts;
    return (
      !path.data && path.depth === 0 && path.parts.length === 1 && !/^(\.|this\b)/.test(path.original) &&
      !this.blockParams.some((names) => names.includes(name!)) && this.options.isHelper(name!)
    );
  }

  private isBlockParam(path: Path): boolean {
    return !path.data && path.depth === 0 && !/^(\.|this\b)/.test(path.original) &&
      this.blockParams.some((names) => names.includes(path.parts[0]!));
  }

  private collectEnv(path: Path): void {
    const at = path.parts.indexOf('Env');
    const name = at >= 0 ? path.parts[at + 1] : undefined;
    if (name) this.envNames.add(name);
  }

  /** `path` → `(__value path "key" base=<where the path starts> walk="a.b" prefix="$x")` */
  private wrap(path: Path, printed: boolean): hbs.AST.SubExpression & Call {
    this.collectEnv(path);
    const loc = path.loc;
    let base: Path | undefined;
    let prefix = '';
    let walk: readonly string[] = path.parts;
    if (path.data || this.isBlockParam(path)) {
      const [head, ...rest] = path.parts;
      walk = rest;
      prefix = path.data ? (head === 'root' ? '' : this.options.displayNames.get(head!) ?? `@${head}`) : this.options.displayNames.get(head!) ?? head!;
      base = { type: 'PathExpression', data: path.data, depth: 0, parts: [head!], original: `${path.data ? '@' : ''}${head}`, loc };
    } else {
      base = { type: 'PathExpression', data: false, depth: path.depth, parts: [], original: 'this', loc };
    }
    const key = [prefix, ...walk].filter((s) => s !== '').join('.') || (path.data ? '$' : '.');
    const pair = (k: string, value: hbs.AST.Expression): hbs.AST.HashPair => ({ type: 'HashPair', key: k, value, loc });
    const str = (value: string): hbs.AST.StringLiteral => ({ type: 'StringLiteral', value, original: value, loc });
    const pairs = [pair('base', base), pair('walk', str(walk.join('.'))), pair('prefix', str(prefix))];
    if (printed) pairs.push(pair('printed', { type: 'BooleanLiteral', value: true, original: true, loc } as hbs.AST.BooleanLiteral));
    return {
      type: 'SubExpression',
      path: { type: 'PathExpression', data: false, depth: 0, parts: ['__value'], original: '__value', loc },
      params: [path, str(key)],
      hash: { type: 'Hash', pairs, loc },
      loc,
    };
  }
}

/** Rewrites `program` in place (see the module comment) and reports the `Env.*` names it reads. */
export function enforceStrictValues(program: hbs.AST.Program, options: StrictOptions): StrictResult {
  const transform = new StrictTransform(options);
  transform.program(program);
  return { envNames: transform.envNames, problems: transform.problems };
}
