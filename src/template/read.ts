import { readFile } from 'node:fs/promises';
import { InputError, messageOf } from '../errors.js';

/** Reads a file the user named; failure is an InputError naming it (`what`: "template", ...). */
export async function readInputFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(path, `cannot read the ${what}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, { cause: error });
  }
}

/** A template file's text, for callers that render it more than once or from elsewhere. */
export function readTemplateFile(path: string): Promise<string> {
  return readInputFile(path, 'template');
}
