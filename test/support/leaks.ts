import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Every form a leaked value could take in an output: as written, base64, base64url, URL-encoded. */
export function encodings(value: string): Record<'raw' | 'base64' | 'base64url' | 'url', string> {
  return {
    raw: value,
    base64: Buffer.from(value).toString('base64'),
    base64url: Buffer.from(value).toString('base64url'),
    url: encodeURIComponent(value),
  };
}

/** Every regular file under `dir`, never following a symlink (a workspace holds a repository's own links). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}
