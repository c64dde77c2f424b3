/**
 * The template renderer: Handlebars (or stencil's Go-template subset) over multi-document YAML,
 * strict about missing values, with the rendered output parsed and validated before use.
 */
export { renderTemplate, renderTemplateFile } from './render.js';
export { readTemplateFile } from './read.js';
export { templateValuesFor, checkoutValues, versionOfCommit, versionFromDescribe, parseSetFlags, loadValuesFiles, mergeValues, ValuesFile } from './values.js';
export { detectSyntax, translateGoTemplate, type TemplateSyntax, type GoTranslation } from './go-syntax.js';
export { HELPERS } from './helpers.js';
export { TemplateValueError, TemplateSyntaxError, TemplateRenderError, RenderedYamlError, TemplateProblemsError } from './errors.js';
export type { TemplateValues, RunContext, RenderOptions, RenderedTemplate } from './types.js';
