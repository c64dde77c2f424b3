import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError } from '../errors.js';
import type { ReleaseAsset } from './types.js';

const CONTENT_TYPES: readonly [RegExp, string][] = [
  [/\.(tar\.gz|tgz)$/i, 'application/gzip'],
  [/\.gz$/i, 'application/gzip'],
  [/\.zip$/i, 'application/zip'],
  [/\.tar$/i, 'application/x-tar'],
  [/\.json$/i, 'application/json'],
  [/\.(txt|md|sha256|sha512|sum|asc|sig)$/i, 'text/plain'],
  [/\.(ya?ml)$/i, 'application/yaml'],
];

/** The media type GitHub is told for an asset; anything unknown is a byte stream. */
export function contentTypeFor(name: string): string {
  return CONTENT_TYPES.find(([pattern]) => pattern.test(name))?.[1] ?? 'application/octet-stream';
}

/**
 * Checks every asset file before any request: it exists, is a regular file, and no two share a
 * name on the release. Bad input is an InputError (exit 2) naming the file.
 */
export async function readAssets(paths: readonly string[]): Promise<ReleaseAsset[]> {
  const assets: ReleaseAsset[] = [];
  const names = new Map<string, string>();
  for (const path of paths) {
    let size: number;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new InputError(`--asset ${path}`, 'not a regular file');
      size = info.size;
    } catch (error) {
      if (error instanceof InputError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(`--asset ${path}`, code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(error)})`, { cause: error });
    }
    const name = basename(path);
    const earlier = names.get(name);
    if (earlier !== undefined) throw new InputError(`--asset ${path}`, `has the same name as ${earlier}; a release cannot hold two assets named "${name}"`);
    names.set(name, path);
    assets.push({ path, name, size, contentType: contentTypeFor(name) });
  }
  return assets;
}
