import { KeelsonError } from '../errors.js';

/**
 * Errors of the template renderer. All are bad input (exit 2): the template or its values must
 * change, retrying will not help. Each message starts with `template:line` so an editor can jump
 * there.
 */

/** A value the template asks for is missing (never rendered as an empty string or `<no value>`). */
export class TemplateValueError extends KeelsonError {
  readonly code = 'KEELSON_TEMPLATE_VALUE';
  readonly exitCode = 2;
  override readonly name = 'TemplateValueError';

  constructor(
    readonly template: string,
    readonly line: number,
    readonly key: string,
    /** The nearest known key, for "did you mean" */
    readonly suggestion: string | undefined,
    /** What the user can do about it, e.g. `pass --set K=VALUE ...` */
    hint: string | undefined,
  ) {
    super(
      `${template}:${line}: no value for "${key}"` +
        (suggestion ? ` (did you mean "${suggestion}"?)` : '') +
        (hint ? `; ${hint}` : ''),
    );
  }
}

/** The template does not parse, or uses a construct keelson does not support. */
export class TemplateSyntaxError extends KeelsonError {
  readonly code = 'KEELSON_TEMPLATE_SYNTAX';
  readonly exitCode = 2;
  override readonly name = 'TemplateSyntaxError';

  constructor(
    readonly template: string,
    readonly line: number,
    detail: string,
    /** The offending construct (`with`, `printf "%x"`, a helper name), when there is one */
    readonly construct?: string,
  ) {
    super(`${template}:${line}: ${detail}`);
  }
}

/** A helper was called with values it cannot handle (e.g. `trunc "x" .S`, `toYaml` of a cycle). */
export class TemplateRenderError extends KeelsonError {
  readonly code = 'KEELSON_TEMPLATE_RENDER';
  readonly exitCode = 2;
  override readonly name = 'TemplateRenderError';

  constructor(readonly template: string, readonly line: number | undefined, detail: string, options?: { cause?: unknown }) {
    super(`${template}${line === undefined ? '' : `:${line}`}: ${detail}`, options);
  }
}

/** The rendered text is not YAML, or a document is not a Kubernetes object. */
export class RenderedYamlError extends KeelsonError {
  readonly code = 'KEELSON_RENDERED_YAML';
  readonly exitCode = 2;
  override readonly name = 'RenderedYamlError';

  constructor(
    readonly template: string,
    /** 1-based index of the document in the rendered output */
    readonly document: number,
    /** 1-based line in the rendered output */
    readonly line: number,
    detail: string,
  ) {
    super(`${template}: rendered document ${document} (output line ${line}): ${detail}`);
  }
}

/**
 * Several problems of one template, found in one try (missing values, unknown helpers, wrong
 * argument counts), each with its line, so the user fixes them all at once. One problem alone is
 * thrown as itself, never wrapped.
 */
export class TemplateProblemsError extends KeelsonError {
  readonly code = 'KEELSON_TEMPLATE_PROBLEMS';
  readonly exitCode = 2;
  override readonly name = 'TemplateProblemsError';

  constructor(readonly template: string, readonly problems: readonly KeelsonError[]) {
    super(`${template}: ${problems.length} problems: ${problems.map((p) => p.message).join('; ')}`);
  }
}

/** Throws the problems found: nothing, the one problem, or all of them together. A missing
 * value is named once, at its first line: one --set fixes every place that reads it. */
export function throwProblems(template: string, problems: readonly KeelsonError[]): void {
  const unique = new Map<string, KeelsonError>();
  for (const problem of problems) {
    const id = problem instanceof TemplateValueError ? `value:${problem.key}` : problem.message;
    if (!unique.has(id)) unique.set(id, problem);
  }
  const [first, ...more] = unique.values();
  if (first && more.length === 0) throw first;
  if (first) throw new TemplateProblemsError(template, [first, ...more]);
}

