import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import semver from 'semver';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { InputError, UsageError } from '../errors.js';
import { readInputFile } from './read.js';
import type { RunContext, TemplateValues } from './types.js';

const run = promisify(execFile);

/**
 * The values a run's templates see: keelson's own names plus stencil's `duat.*`, so templates
 * written for duat render unchanged. `Env.*` is added by the renderer, only for names it reads.
 */
export function templateValuesFor(context: RunContext): TemplateValues {
  const duat: Record<string, string> = { gitBranch: context.branch, gitHash: context.commit, gitURL: context.url };
  if (context.version !== undefined) duat.version = context.version;
  return {
    Commit: context.commit,
    Branch: context.branch,
    URL: context.url,
    ID: context.runId,
    Namespace: context.namespace,
    Image: context.image,
    Registry: context.registry,
    duat,
  };
}

/** Where versionOfCommit looks, in its order: for the message when none gives a version. */
export const VERSION_SOURCES = '<repo-version> in README.md, a VERSION file, "version" in package.json, then git describe --tags';

/**
 * The semver of `commit` in the repository at `repoDir`, read from the committed tree (never a
 * work tree, never the cwd): duat's `<repo-version>` in README.md, then a VERSION file, then
 * package.json, then `git describe --tags`. A commit N past tag v1.2.3 is `1.2.4-dev.N.g<hash>`
 * (ordered after 1.2.3, and usable as an image tag, which `+build` is not). Undefined when
 * nothing gives a version.
 */
export async function versionOfCommit(repoDir: string, commit: string): Promise<string | undefined> {
  const git = async (...args: string[]): Promise<string | undefined> => {
    try {
      return (await run('git', ['-C', repoDir, ...args], { maxBuffer: 4 * 1024 * 1024 })).stdout;
    } catch {
      return undefined;
    }
  };
  if ((await git('cat-file', '-e', `${commit}^{commit}`)) === undefined) {
    throw new InputError(repoDir, `commit ${commit} not found in the repository`);
  }
  const readme = await git('show', `${commit}:README.md`);
  const tagged = readme && /<repo-version>\s*([^<\s]+)\s*<\/repo-version>/.exec(readme)?.[1];
  const fromFiles = [
    tagged,
    (await git('show', `${commit}:VERSION`))?.trim(),
    packageVersion(await git('show', `${commit}:package.json`)),
  ];
  for (const candidate of fromFiles) {
    const clean = candidate ? semver.clean(candidate) : null;
    if (clean) return clean;
  }
  const described = (await git('describe', '--tags', commit))?.trim();
  return described ? versionFromDescribe(described) : undefined;
}

/**
 * stencil's `duat.*` values for the git checkout that holds `dir` (what stencil derived from the
 * directory it ran in): `gitBranch`, `gitHash`, `gitTag` (a tag on HEAD), `gitURL` (the origin
 * remote, without credentials), `gitDir` (the top of the work tree) and `version` (as
 * versionOfCommit reads it from HEAD). A value git cannot give is left out, so a template that
 * reads it still fails naming it. Not a checkout: no values.
 */
export async function checkoutValues(dir: string): Promise<TemplateValues> {
  const git = async (...args: string[]): Promise<string | undefined> => {
    try {
      const out = (await run('git', ['-C', dir, ...args], { maxBuffer: 4 * 1024 * 1024 })).stdout.trim();
      return out === '' ? undefined : out;
    } catch {
      return undefined;
    }
  };
  const top = await git('rev-parse', '--show-toplevel');
  const hash = top && (await git('rev-parse', '--verify', '--quiet', 'HEAD^{commit}'));
  if (!top || !hash) return {};
  const [branch, tag, url, version] = await Promise.all([
    git('symbolic-ref', '--quiet', '--short', 'HEAD'),
    git('describe', '--tags', '--exact-match', hash),
    git('remote', 'get-url', 'origin'),
    versionOfCommit(top, hash).catch(() => undefined),
  ]);
  const duat: Record<string, string> = { gitHash: hash, gitDir: top };
  if (branch) duat.gitBranch = branch;
  if (tag) duat.gitTag = tag;
  if (url) duat.gitURL = withoutCredentials(url);
  if (version) duat.version = version;
  return { duat };
}

/** `https://user:token@host/x` → `https://host/x`; other forms (scp-like, paths) as they are. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url;
  }
}

function packageVersion(text: string | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

/** `v1.2.3` → `1.2.3`; `v1.2.3-4-gabc123` → `1.2.4-dev.4.gabc123`; not a version → undefined. */
export function versionFromDescribe(described: string): string | undefined {
  const m = /^(.*)-(\d+)-g([0-9a-f]+)$/.exec(described);
  const tag = semver.parse(semver.clean(m ? m[1]! : described) ?? '');
  if (!tag) return undefined;
  if (!m) return tag.version;
  const [, , distance, hash] = m;
  if (tag.prerelease.length > 0) return `${tag.version}.dev.${distance}.g${hash}`;
  return `${tag.major}.${tag.minor}.${tag.patch + 1}-dev.${distance}.g${hash}`;
}

const SET_KEY = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

/**
 * `--set key=value` flags → values. Splits on the first `=` only, so a value may hold `=`, commas
 * and quotes verbatim; a dotted key (`duat.gitBranch=main`) makes nested values. Values stay
 * strings (like Helm's --set-string): `Commit=0123` must not become a number.
 */
export function parseSetFlags(flags: readonly string[]): TemplateValues {
  const values: TemplateValues = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq < 0) throw new UsageError(`--set ${flag}: expected KEY=VALUE (e.g. --set Image=registry:5000/app:1.0)`);
    const key = flag.slice(0, eq);
    if (!SET_KEY.test(key)) {
      throw new UsageError(`--set ${flag}: "${key}" is not a key (expected a name or a dotted path such as duat.gitBranch)`);
    }
    setPath(values, key.split('.'), flag.slice(eq + 1));
  }
  return values;
}

function setPath(target: TemplateValues, path: readonly string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment];
    if (!isMap(next)) node[segment] = {};
    node = node[segment] as TemplateValues;
  }
  node[path.at(-1)!] = value;
}

/** A --values file holds a mapping of names to values (YAML or JSON). */
export const ValuesFile = z.record(z.string(), z.unknown());
export type ValuesFile = z.infer<typeof ValuesFile>;

/** Reads --values files in order; later files override earlier ones (maps merge, lists replace). */
export async function loadValuesFiles(paths: readonly string[]): Promise<TemplateValues> {
  let values: TemplateValues = {};
  for (const path of paths) {
    const text = await readInputFile(path, 'values file');
    const parsed = ValuesFile.safeParse(parseValuesText(path, text) ?? {});
    if (!parsed.success) throw new InputError(path, 'expected a mapping of names to values (e.g. Image: registry:5000/app:1.0)');
    values = mergeValues(values, parsed.data);
  }
  return values;
}

/** `.json` files are parsed as JSON (YAML would accept `{"a": }`), anything else as YAML. */
function parseValuesText(path: string, text: string): unknown {
  if (path.endsWith('.json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new InputError(path, `invalid JSON: ${(error as Error).message}`);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true });
  const [error] = doc.errors;
  if (error) {
    const line = error.linePos?.[0].line;
    throw new InputError(line ? `${path}:${line}` : path, `invalid YAML: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  return doc.toJS() as unknown;
}

/** Deep merge: maps merge key by key, anything else in `override` replaces what `base` had. */
export function mergeValues(base: TemplateValues, override: TemplateValues): TemplateValues {
  const merged: TemplateValues = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    merged[key] = isMap(current) && isMap(value) ? mergeValues(current, value) : value;
  }
  return merged;
}

function isMap(value: unknown): value is TemplateValues {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
