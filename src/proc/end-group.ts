import { setTimeout as sleep } from 'node:timers/promises';
import { processGroupMembers, type ProcessIdentity } from './identity.js';

export interface EndGroupOptions {
  /** Time between SIGTERM and SIGKILL. @default 5000 ms */
  readonly graceMs?: number;
  /** How long to wait for the group to be gone after SIGKILL. @default 5000 ms */
  readonly killWaitMs?: number;
}

/** What endProcessGroup found and did. */
export interface EndedGroup {
  /** Members alive when it started; 0 means the group was already gone. */
  readonly found: number;
  /** Members that were still there after SIGKILL and the wait (should be 0: a process in
   * uninterruptible sleep is the only way to stay). */
  readonly left: number;
}

/**
 * Ends a process group left behind by a keelson that died: SIGTERM to the group, then SIGKILL
 * to whatever is left after the grace period. Only the group started as `leader` is signalled
 * (see processGroupMembers for how a reused pid is told apart).
 */
export async function endProcessGroup(leader: ProcessIdentity, options: EndGroupOptions = {}): Promise<EndedGroup> {
  const found = processGroupMembers(leader).length;
  if (found === 0) return { found, left: 0 };
  signalGroup(leader.pid, 'SIGTERM');
  if (await waitGone(leader, options.graceMs ?? 5000)) return { found, left: 0 };
  signalGroup(leader.pid, 'SIGKILL');
  await waitGone(leader, options.killWaitMs ?? 5000);
  return { found, left: processGroupMembers(leader).length };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
}

async function waitGone(leader: ProcessIdentity, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (processGroupMembers(leader).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}
