import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { closestKey } from '../domain/index.js';
import { InputError } from '../errors.js';

export interface ParseYamlOptions {
  /**
   * Whether error messages may quote values found in the file. Off for files a repository
   * commits: their errors name keys and lines only, so that nothing the file holds is echoed
   * into run records and pages. @default true
   */
  readonly quoteValues?: boolean;
  /** A better message for an unknown key (e.g. one that belongs elsewhere); `path` is its parent's. */
  readonly unknownKey?: (key: string, path: readonly string[]) => string | undefined;
}

/**
 * Parses YAML text and checks it with a zod schema. Every bad field is reported at once, each
 * as `file:line: field.path: problem`, so a user fixes the whole file in one go.
 */
export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, file: string, options: ParseYamlOptions = {}): z.infer<S> {
  const quoteValues = options.quoteValues ?? true;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
    // The parser's message may quote the text it choked on; its code never does.
    const detail = quoteValues ? first.message.split('\n')[0] : `${first.code.toLowerCase().replaceAll('_', ' ')}`;
    throw new InputError(`${file}:${line}`, `not valid YAML: ${detail}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // An unknown key is reported at its own line, not at its parent's.
    const keyPath = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...path, issue.keys[0]!] : path;
    const line = lineOf(doc.contents, keyPath, lineCounter);
    const field = path.length > 0 ? path.join('.') : '(top level)';
    const at = line ? `line ${line}: ` : '';
    const hint = (i: z.core.$ZodIssue): string =>
      quoteValues || i.code !== 'unrecognized_keys' || i.keys.every((k) => KEY_NAME.test(k)) ? didYouMean(schema, i) : '';
    if (issue.code === 'unrecognized_keys' && options.unknownKey) {
      const keys = issue.keys.map((key) => ({ key, better: options.unknownKey!(key, path) }));
      const plain = keys.filter((k) => k.better === undefined).map((k) => k.key);
      return [
        ...keys.filter((k) => k.better !== undefined).map((k) => {
          const keyLine = lineOf(doc.contents, [...path, k.key], lineCounter);
          return `${keyLine ? `line ${keyLine}: ` : at}${k.better}`;
        }),
        ...(plain.length > 0 ? [`${at}${field}: ${issueMessage({ ...issue, keys: plain }, quoteValues)}${hint({ ...issue, keys: plain })}`] : []),
      ];
    }
    // A required key that is not there at all: say so, rather than zod's "received undefined".
    if (issue.code === 'invalid_type' && issue.path.length > 0 && valueAt(raw, issue.path) === undefined) {
      return [`${at}${field}: missing (expected ${issue.expected})`];
    }
    return [`${at}${field}: ${issueMessage(issue, quoteValues)}${hint(issue)}`];
  });
  throw new InputError(file, problems.join('; '));
}

const KEY_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,39}$/;

/** What the parsed document holds at `path` (undefined when a key along it is absent). */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** zod's message, or one that quotes no value (key names are fine: they are the schema's words). */
function issueMessage(issue: z.core.$ZodIssue, quoteValues: boolean): string {
  if (quoteValues) return issue.message;
  switch (issue.code) {
    case 'unrecognized_keys':
      // A key is quoted only when it looks like one: a line of some other file parsed as a key is not.
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => (KEY_NAME.test(k) ? `"${k}"` : '(not shown)')).join(', ')}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'custom':
      // Our own refinements may quote what they were given.
      return issue.message.replace(/"(?:[^"\\]|\\.)*"/g, 'the value');
    default:
      return issue.message;
  }
}

export async function loadYamlFile<S extends z.ZodType>(schema: S, file: string): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(file, 'cannot read the file', { cause: error });
  }
  return parseYamlWith(schema, text, file);
}

/** The line of the deepest node that exists along `path`, for error messages. */
function lineOf(node: unknown, path: readonly string[], counter: LineCounter): number | undefined {
  let current = node as Node | null | undefined;
  let line: number | undefined = current?.range ? counter.linePos(current.range[0]).line : undefined;
  for (const key of path) {
    if (isMap(current)) {
      const pair = current.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === key);
      if (!pair) break;
      const keyNode = pair.key as Node | undefined;
      if (keyNode?.range) line = counter.linePos(keyNode.range[0]).line;
      current = pair.value as Node | undefined;
    } else if (isSeq(current)) {
      current = current.items[Number(key)] as Node | undefined;
      if (current?.range) line = counter.linePos(current.range[0]).line;
    } else {
      break;
    }
  }
  return line;
}

/** ` (did you mean "image"?)` for an unknown key that is a typo of a key the schema has there. */
function didYouMean(schema: z.ZodType, issue: z.core.$ZodIssue): string {
  if (issue.code !== 'unrecognized_keys') return '';
  const known = keysAt(schema, issue.path.map(String));
  const hints = issue.keys.flatMap((key) => {
    const near = known && closestKey(key, known);
    if (!near) return [];
    return [issue.keys.length === 1 ? `did you mean "${near}"?` : `"${key}": did you mean "${near}"?`];
  });
  return hints.length > 0 ? ` (${hints.join(', ')})` : '';
}

/** The keys of the object schema found along `path` (through optional, default and array). */
function keysAt(schema: z.ZodType, path: readonly string[]): string[] | undefined {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const key of path) {
    if (current instanceof z.ZodObject) current = unwrap(current.shape[key] as z.ZodType | undefined);
    else if (current instanceof z.ZodArray) current = unwrap(current.element as z.ZodType);
    else return undefined;
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : undefined;
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}
