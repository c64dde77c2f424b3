/** Values a template reads: nested maps of strings, numbers, booleans and lists. */
export type TemplateValues = Record<string, unknown>;

/** What a run knows about itself; `templateValuesFor` turns it into stencil-compatible values. */
export interface RunContext {
  /** Full commit hash */
  readonly commit: string;
  readonly branch: string;
  /** Repository URL or path as the user wrote it */
  readonly url: string;
  readonly runId: string;
  readonly namespace: string;
  /** Image reference the run builds, e.g. `registry:5000/team/app:main` */
  readonly image: string;
  /** Registry host[:port] */
  readonly registry: string;
  /** Semver of the commit (see versionOfCommit); templates that read `duat.version` need it */
  readonly version?: string;
}

export interface RenderOptions {
  /** How errors name the template: a path, or `<stdin>` */
  readonly templateName: string;
  /** Every document must have apiVersion, kind and metadata.name. `false`: any YAML mappings.
   * `'auto'`: checked as Kubernetes objects when the output looks like Kubernetes YAML (lines
   * `apiVersion:` and `kind:` at the start of a line), else any text (a Dockerfile, a registry
   * config, a one-liner), not parsed at all. @default true */
  readonly requireKubernetesObjects?: boolean | 'auto';
  /** @default 'auto': Go syntax when the template uses Go-only constructs, else Handlebars */
  readonly syntax?: 'auto' | 'go' | 'handlebars';
  /** Where `Env.NAME` and `expandenv` read variables. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The clock behind `now`. @default () => new Date() */
  readonly now?: () => Date;
}

export interface RenderedTemplate {
  /** The rendered multi-document YAML */
  readonly text: string;
  /** Its non-empty documents, parsed */
  readonly documents: Record<string, unknown>[];
}
