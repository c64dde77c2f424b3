import { open, realpath } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { KeelsonError } from '../errors.js';

/**
 * A path a repository named (in its keelson.yaml, or a file keelson reads by convention) that
 * does not stay inside its committed tree: absolute, `..` out of it, or a symlink that leads
 * out. The message names the key and the path the repository wrote, never what is at the other
 * end: the point is that keelson never reads it.
 */
export class TreePathError extends KeelsonError {
  readonly code = 'KEELSON_TREE_PATH';
  readonly exitCode = 2;
  override readonly name = 'TreePathError';

  constructor(readonly what: string, readonly given: string, detail: string) {
    super(`${what} "${given}": ${detail}`);
  }
}

/** Largest repository file keelson reads itself (keelson.yaml, a builder template). */
export const MAX_TREE_FILE_BYTES = 1024 * 1024;

function outside(relative: string): boolean {
  return relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
}

/**
 * Resolves `given` (relative to the tree's root) to a real path inside the tree, following
 * symlinks only as far as they stay inside it. `what` names the key for error messages, e.g.
 * `build.context`. Throws TreePathError for an absolute path, a `..` out of the tree, a symlink
 * that leaves it, or a missing file.
 */
export async function resolveInTree(root: string, given: string, what: string): Promise<string> {
  const fail = (detail: string): never => {
    throw new TreePathError(what, given, detail);
  };
  if (given.includes('\0')) fail('is not a valid path');
  if (path.isAbsolute(given)) fail('must be a path relative to the repository root, not an absolute path');
  const normal = path.normalize(given);
  if (outside(normal)) fail('leads out of the repository (..); only files of the committed tree are read');
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(path.join(realRoot, normal));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return fail('is a symlink loop');
    // A dangling symlink: say so without saying where it points.
    return fail('no such file or directory in the repository (or a symlink to nothing)');
  }
  if (outside(path.relative(realRoot, real))) {
    fail('is (or passes through) a symlink that leads out of the repository; only files of the committed tree are read');
  }
  return real;
}

/**
 * Reads a regular file of the committed tree, confined as resolveInTree says, at most
 * MAX_TREE_FILE_BYTES. The file is opened without following a last symlink, so a swap after
 * the check cannot redirect the read.
 */
export async function readTreeFile(root: string, given: string, what: string): Promise<string> {
  const real = await resolveInTree(root, given, what);
  let handle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw new TreePathError(what, given, 'cannot be opened as a file of the repository');
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new TreePathError(what, given, 'is not a regular file');
    if (stat.size > MAX_TREE_FILE_BYTES) throw new TreePathError(what, given, `is larger than ${MAX_TREE_FILE_BYTES} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
