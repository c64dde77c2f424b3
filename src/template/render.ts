import Handlebars from 'handlebars';
import { KeelsonError, messageOf } from '../errors.js';
import { TemplateRenderError, TemplateSyntaxError, TemplateValueError, throwProblems } from './errors.js';
import { detectSyntax, translateGoTemplate, type GoTranslation } from './go-syntax.js';
import { BUILTIN_LENIENCY, HELPERS, HelperFailure, SKIP_HELPER, type HelperCall } from './helpers.js';
import { enforceStrictValues, INTERNAL_HELPERS } from './strict.js';
import { readTemplateFile } from './read.js';
import { closestKey } from '../domain/index.js';
import type { RenderOptions, RenderedTemplate, TemplateValues } from './types.js';
import { parseRenderedDocuments } from './validate.js';
import { VERSION_SOURCES } from './values.js';

const DEFAULTS = {
  requireKubernetesObjects: true,
  syntax: 'auto',
  now: (): Date => new Date(),
} as const;

interface HelperOptions {
  readonly hash: Record<string, unknown>;
  readonly data?: Record<string, unknown> & { root?: unknown };
  readonly loc?: { start: { line: number } };
}

/**
 * Renders a Handlebars or Go-template (stencil) source into YAML and parses the result. Throws
 * TemplateSyntaxError, TemplateValueError, TemplateRenderError or RenderedYamlError (all exit 2),
 * each naming the template and line.
 */
export function renderTemplate(source: string, values: TemplateValues, options: RenderOptions): RenderedTemplate {
  const name = options.templateName;
  const syntax = options.syntax && options.syntax !== 'auto' ? options.syntax : detectSyntax(source, name);
  const translation = syntax === 'go' ? translateGoTemplate(source, name) : undefined;
  let ast: hbs.AST.Program;
  try {
    // whitespace control (~, standalone lines) runs once, in compile
    ast = Handlebars.parseWithoutProcessing(translation?.source ?? source);
  } catch (error) {
    throw syntaxError(name, error);
  }
  const { envNames, problems: callProblems } = enforceStrictValues(ast, {
    templateName: name,
    isHelper: (helper) => Object.hasOwn(HELPERS, helper) || Object.hasOwn(BUILTIN_LENIENCY, helper) ||
      (INTERNAL_HELPERS as readonly string[]).includes(helper),
    arity: (helper) => (Object.hasOwn(HELPERS, helper) ? HELPERS[helper]!.arity : undefined),
    lenient: (helper, index, count) => (HELPERS[helper]?.lenient ?? BUILTIN_LENIENCY[helper])?.(index, count) ?? false,
    displayNames: translation?.displayNames ?? new Map(),
  });
  const env = options.env ?? process.env;
  const handlebars = Handlebars.create();
  // Every problem of the template is collected and reported together, each with its line.
  const problems: KeelsonError[] = [...(translation?.problems ?? []), ...callProblems];
  registerHelpers(handlebars, name, { root: undefined, env, now: options.now ?? DEFAULTS.now }, translation, problems);
  const context = withEnv(values, envNames, env);
  let text: string;
  try {
    // Go keeps the newline after a standalone {{ if }}; Handlebars drops such lines
    text = handlebars.compile(ast, { noEscape: true, data: true, ignoreStandalone: syntax === 'go' })(context);
  } catch (error) {
    // After a missing value a later failure may only be its consequence: report both.
    if (error instanceof KeelsonError) problems.push(error);
    else problems.push(new TemplateRenderError(name, (error as { lineNumber?: number }).lineNumber, messageOf(error).split('\n')[0]!, { cause: error }));
    throwProblems(name, problems);
    throw error;
  }
  throwProblems(name, problems);
  const kubernetes = options.requireKubernetesObjects ?? DEFAULTS.requireKubernetesObjects;
  if (kubernetes === 'auto' && !looksLikeKubernetes(text)) return { text, documents: [] };
  const documents = parseRenderedDocuments(text, name, kubernetes !== false);
  return { text, documents };
}

/** Kubernetes YAML names its apiVersion and kind at the start of a line; other text does not. */
export function looksLikeKubernetes(text: string): boolean {
  return /^apiVersion:/m.test(text) && /^kind:/m.test(text);
}

/** Reads and renders a template file; errors name the file as given. */
export async function renderTemplateFile(
  path: string,
  values: TemplateValues,
  options: Omit<RenderOptions, 'templateName'> & { templateName?: string } = {},
): Promise<RenderedTemplate> {
  const source = await readTemplateFile(path);
  return renderTemplate(source, values, { ...options, templateName: options.templateName ?? path });
}

function syntaxError(name: string, error: unknown): TemplateSyntaxError {
  const message = messageOf(error);
  const line = (error as { lineNumber?: number }).lineNumber ?? Number(/line (\d+)/.exec(message)?.[1] ?? 1);
  // jison's message: "Parse error on line N:", the excerpt, a pointer, then "Expecting ..."
  const detail = message.startsWith('Parse error') ? `cannot parse the template: ${message.split('\n').at(-1)}` : message.replace(/ - \d+:\d+$/, '');
  return new TemplateSyntaxError(name, line, detail);
}

/** `Env` holds only the variables the template names, so `toYaml .` cannot dump the environment. */
function withEnv(values: TemplateValues, names: ReadonlySet<string>, env: NodeJS.ProcessEnv): TemplateValues {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) picked[name] = value;
  }
  const given = values.Env;
  const explicit = typeof given === 'object' && given !== null && !Array.isArray(given) ? given : {};
  return { ...values, Env: { ...picked, ...explicit } };
}

function registerHelpers(
  handlebars: typeof Handlebars,
  templateName: string,
  base: HelperCall,
  translation: GoTranslation | undefined,
  problems: KeelsonError[],
): void {
  const lineOf = (options: HelperOptions): number | undefined => options.loc?.start.line;
  for (const [helper, spec] of Object.entries(HELPERS)) {
    handlebars.registerHelper(helper, (...args: unknown[]) => {
      const options = args.pop() as HelperOptions;
      try {
        return spec.fn(args, { ...base, root: options.data?.root });
      } catch (error) {
        if (error instanceof KeelsonError) throw error;
        const detail = error instanceof HelperFailure ? error.message : `failed: ${messageOf(error)}`;
        throw new TemplateRenderError(templateName, lineOf(options), `${helper}: ${detail}`, { cause: error });
      }
    });
  }
  handlebars.registerHelper('__lit', (index: number) => translation?.literals[index]);
  handlebars.registerHelper(SKIP_HELPER, () => '');
  handlebars.registerHelper('__let', (variable: string, value: unknown, options: HelperOptions) => {
    if (options.data) options.data[variable] = value;
    return '';
  });
  handlebars.registerHelper('__value', (value: unknown, key: string, options: HelperOptions) => {
    const line = lineOf(options);
    if (value !== undefined && value !== null) {
      if (options.hash.printed === true && typeof value === 'object') {
        throw new TemplateRenderError(templateName, line,
          `"${key}" is a ${Array.isArray(value) ? 'list' : 'map'}; render it with toYaml or toJson, or pick one of its fields`);
      }
      return value;
    }
    const prefix = String(options.hash.prefix ?? '');
    const walk = String(options.hash.walk ?? '');
    const near = suggestion(options.hash.base, walk === '' ? [] : walk.split('.'));
    const nearKey = near && [prefix, ...near].filter((s) => s !== '').join('.');
    const fromRoot = prefix === '' && options.hash.base === options.data?.root;
    let hint: string | undefined;
    if (fromRoot && key.startsWith('Env.')) hint = `set the environment variable ${key.slice(4)} or pass --set ${key}=VALUE`;
    else if (fromRoot && key === 'duat.version') {
      hint = `the HEAD commit of the git checkout gave none (looked at ${VERSION_SOURCES}); pass --set duat.version=VERSION (e.g. 1.0.0) or add it to a --values file`;
    } else if (fromRoot) hint = `pass --set ${key}=VALUE or add it to a --values file`;
    // Recorded, not thrown: rendering goes on to find the template's other missing values.
    problems.push(new TemplateValueError(templateName, line ?? 1, key, nearKey, hint));
    return '';
  });
}

/** The path with its first missing segment replaced by the nearest existing key, if one is close. */
function suggestion(base: unknown, walk: readonly string[]): string[] | undefined {
  let current = base;
  for (let i = 0; i < walk.length; i++) {
    const segment = walk[i]!;
    const container = typeof current === 'object' && current !== null && !Array.isArray(current) ? (current as Record<string, unknown>) : undefined;
    const next = container && Object.hasOwn(container, segment) ? container[segment] : undefined;
    if (next === undefined || next === null) {
      const near = container ? closestKey(segment, Object.keys(container).filter((k) => container[k] != null)) : undefined;
      return near ? [...walk.slice(0, i), near, ...walk.slice(i + 1)] : undefined;
    }
    current = next;
  }
  return undefined;
}
