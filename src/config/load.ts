import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../errors.js';

/**
 * Parses YAML text and checks it with a zod schema. Every bad field is reported at once, each
 * as `file:line: field.path: problem`, so a user fixes the whole file in one go.
 */
export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, file: string): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
    throw new InputError(`${file}:${line}`, `not valid YAML: ${first.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map(String);
    const line = lineOf(doc.contents, path, lineCounter);
    const field = path.length > 0 ? path.join('.') : '(top level)';
    return `${line ? `line ${line}: ` : ''}${field}: ${issue.message}`;
  });
  throw new InputError(file, problems.join('; '));
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
