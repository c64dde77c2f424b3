import { randomBytes } from 'node:crypto';
import { link, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Crash-safe file writes for the file store. A record is written to a temp file next to its
 * final name, fsynced, renamed into place and the directory fsynced: after a kill -9 or a power
 * cut the final name holds either the old or the new content, never a torn mix. Readers skip
 * temp files (`<name>.tmp-<pid>-<random>`); `removeStaleTemps` clears those of dead processes.
 */

const TEMP_MARK = '.tmp-';

export function isTempName(name: string): boolean {
  return name.includes(TEMP_MARK);
}

function tempPathFor(path: string): string {
  return `${path}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
}

async function writeTemp(path: string, data: string, durable = true): Promise<string> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    if (durable) await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  return temp;
}

/** Makes a rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `data` atomically. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const temp = await writeTemp(path, data);
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(dirname(path));
}

/**
 * Creates `path` with `data` only if it does not exist yet, atomically: link(2) of a complete
 * temp file fails with EEXIST instead of replacing. Returns false when the file existed.
 * `durable: false` skips the fsyncs, for lock files that mean nothing after a reboot.
 */
export async function createFileExclusive(
  path: string, data: string, options: { durable?: boolean } = {},
): Promise<boolean> {
  const durable = options.durable ?? true;
  const temp = await writeTemp(path, data, durable);
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  if (durable) await fsyncDir(dirname(path));
  return true;
}

/** Removes temp files left behind by processes that are gone (killed mid-write). */
export async function removeStaleTemps(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    const at = name.lastIndexOf(TEMP_MARK);
    if (at < 0) continue;
    const pid = Number(name.slice(at + TEMP_MARK.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
      await rm(join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}

/** Whether a process with this id exists on this host (signal 0 checks without sending). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
