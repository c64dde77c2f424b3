import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { isRunning, processIdentity, type ProcessIdentity } from '../proc/index.js';
import { createFileExclusive } from './atomic-file.js';
import { StateDirBusyError } from './errors.js';
import { breakStaleLock } from './file-lock.js';

/** What the lock file holds: who owns the state dir. */
interface Holder extends ProcessIdentity {
  readonly token: string;
}

/**
 * One process at a time may run pipelines on a state dir. The lock is a file holding the
 * owner's pid and start time; it is taken with link(2) (atomic, also over NFS) and counts as
 * free when that process is no longer running — so a kill -9 frees it, without the kernel's
 * help, and a reused pid does not keep it held.
 */
export class StateDirLock {
  private released = false;
  private readonly onExit = (): void => {
    // A normal exit without close(): leave no lock behind (a kill -9 leaves one that the next
    // process finds dead).
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  };

  private constructor(readonly path: string, private readonly content: string) {
    process.once('exit', this.onExit);
  }

  /** Takes the lock or throws StateDirBusyError naming the live holder. */
  static async acquire(path: string, stateDir: string): Promise<StateDirLock> {
    const me = processIdentity(process.pid) ?? { pid: process.pid };
    const content = `${JSON.stringify({ ...me, token: randomBytes(8).toString('hex') } satisfies Holder)}\n`;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await createFileExclusive(path, content, { durable: false })) return new StateDirLock(path, content);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) continue; // released meanwhile
      const holder = parseHolder(text);
      if (holder && isRunning(holder)) throw new StateDirBusyError(stateDir, holder.pid);
      await breakStaleLock(path, text);
    }
    throw new StateDirBusyError(stateDir, undefined);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    if ((await readFile(this.path, 'utf8').catch(() => '')) === this.content) await rm(this.path, { force: true });
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || value.pid <= 0) return undefined;
    return { pid: value.pid, token: String(value.token), ...(typeof value.startTime === 'string' ? { startTime: value.startTime } : {}) };
  } catch {
    return undefined; // torn or edited: nobody can be shown to hold it
  }
}
