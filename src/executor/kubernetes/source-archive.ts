import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';

/** A tar of a source tree in a temp file, with what the pod side checks it against. */
export interface SourceArchive {
  readonly file: string;
  readonly bytes: number;
  /** hex sha256 of the whole tar */
  readonly sha256: string;
  readonly dispose: () => Promise<void>;
}

export class SourceTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`source tree is larger than the limit of ${limit} bytes (kubernetes.maxSourceBytes)`);
  }
}

/**
 * Packs `dir` (the committed tree, so `.git` is left out) into a temp file, stopping as soon as
 * the tar would exceed `maxBytes`. Regular files, directories and symlinks only.
 */
export async function packSource(dir: string, maxBytes: number): Promise<SourceArchive> {
  const tempDir = await mkdtemp(join(tmpdir(), 'keelson-source-'));
  const file = join(tempDir, 'source.tar');
  const dispose = () => rm(tempDir, { recursive: true, force: true });
  const tar = pack();
  const hash = createHash('sha256');
  let bytes = 0;
  let tooLarge = false;
  tar.on('data', (chunk: unknown) => {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
    if (bytes > maxBytes && !tooLarge) {
      tooLarge = true;
      tar.destroy();
    }
  });
  const written = pipeline(tar, createWriteStream(file));
  written.catch(() => undefined); // awaited below; this keeps an early failure from being "unhandled"

  try {
    await addTree(tar, dir, dir, maxBytes);
    tar.finalize();
    await written;
    if (tooLarge) throw new SourceTooLargeError(maxBytes);
    return { file, bytes, sha256: hash.digest('hex'), dispose };
  } catch (error) {
    tar.destroy();
    await written.catch(() => undefined);
    await dispose();
    // Destroying the stream fails whatever was writing to it; the size is the real reason.
    throw tooLarge ? new SourceTooLargeError(maxBytes) : error;
  }
}

async function addTree(tar: ReturnType<typeof pack>, root: string, dir: string, maxBytes: number): Promise<void> {
  for (const entry of (await readdir(dir)).sort()) {
    if (dir === root && entry === '.git') continue;
    const path = join(dir, entry);
    const name = relative(root, path);
    const stat = await lstat(path);
    if (stat.isDirectory()) {
      await entryDone(tar, { name, type: 'directory', mode: stat.mode & 0o7777 });
      await addTree(tar, root, path, maxBytes);
    } else if (stat.isSymbolicLink()) {
      await entryDone(tar, { name, type: 'symlink', linkname: await readlink(path) });
    } else if (stat.isFile()) {
      if (stat.size > maxBytes) throw new SourceTooLargeError(maxBytes);
      const sink = tar.entry({ name, type: 'file', size: stat.size, mode: stat.mode & 0o7777 });
      await pipeline(createReadStream(path), sink);
    }
  }
}

function entryDone(tar: ReturnType<typeof pack>, header: Parameters<ReturnType<typeof pack>['entry']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry(header, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
}

/**
 * The command run in the copy pod (cwd: the mounted volume). Reads exactly `bytes` bytes, because
 * the exec stream's stdin cannot be closed on every server (websocket v4; kwok never closes it),
 * checks the checksum before unpacking anything, and leaves only the tree behind.
 */
export function unpackCommand(bytes: number, sha256: string): string[] {
  if (!Number.isSafeInteger(bytes) || bytes < 0 || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new Error('unpackCommand: bad size or checksum');
  }
  const tar = '.keelson-source.tar';
  return ['sh', '-c', [
    'set -e',
    `head -c ${bytes} > ${tar}`,
    // the message is what the run record shows: say what went wrong, not just "FAILED"
    `echo "${sha256}  ${tar}" | sha256sum -c - >/dev/null 2>&1 || { echo "checksum mismatch: the ${bytes} bytes that reached the volume are not the source that was sent" >&2; exit 3; }`,
    `tar -x -f ${tar}`,
    `rm -f ${tar}`,
  ].join('; ')];
}
