import { readFileSync, readdirSync } from 'node:fs';

/**
 * A process as it can be recognised later, also by another keelson process after a kill -9: its
 * pid plus when it started. A pid alone is not enough: the kernel hands freed pids out again,
 * and ending "the process group of pid 4711" days later could hit someone else's work.
 */
export interface ProcessIdentity {
  readonly pid: number;
  /** `<boot id>:<start time in clock ticks since boot>` (Linux /proc); absent where there is
   * no /proc, and then only the pid is compared. */
  readonly startTime?: string;
}

interface ProcStat {
  readonly pgid: number;
  readonly sid: number;
  readonly startTicks: string;
}

let bootId: string | undefined | null = null;

function currentBootId(): string | undefined {
  if (bootId === null) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = undefined;
    }
  }
  return bootId;
}

/** /proc/<pid>/stat, or undefined when the process is gone (or there is no /proc). */
function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): pgrp is field 5, session 6, starttime 22.
  const state = fields[0];
  if (state === 'Z' || state === 'X') return undefined; // a zombie runs nothing
  return { pgid: Number(fields[2]), sid: Number(fields[3]), startTicks: fields[19] ?? '' };
}

/** The identity of a running process, or undefined when it is gone. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  const stat = readStat(pid);
  const boot = currentBootId();
  if (stat && boot) return { pid, startTime: `${boot}:${stat.startTicks}` };
  return pidExists(pid) ? { pid } : undefined;
}

/** Whether this very process (same pid, same start) is still running. */
export function isRunning(identity: ProcessIdentity): boolean {
  const now = processIdentity(identity.pid);
  if (!now) return false;
  if (identity.startTime === undefined || now.startTime === undefined) return true;
  return now.startTime === identity.startTime;
}

/** Whether a process with this id exists on this host (signal 0 checks without sending). */
export function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The live members of a process group that was started as `leader` (a process spawned with
 * `detached: true`, so its pid is the group id and the session id). Without /proc only the
 * group as a whole can be probed: then [leader.pid] while the group has any member.
 *
 * Members that outlive their leader keep the group id, and Linux does not hand out a pid that
 * is still in use as a group id; so while any member lives, the number cannot belong to a
 * newer process. If the leader's pid is taken by a process that started later, the old group
 * is gone and the number now means someone else: nothing is returned.
 */
export function processGroupMembers(leader: ProcessIdentity): number[] {
  const pgid = leader.pid;
  const boot = currentBootId();
  if (boot === undefined) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const now = readStat(pgid);
  if (now && leader.startTime !== undefined && `${boot}:${now.startTicks}` !== leader.startTime) return [];
  if (leader.startTime !== undefined && !leader.startTime.startsWith(`${boot}:`)) return []; // recorded before a reboot
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && stat.pgid === pgid && stat.sid === pgid) members.push(Number(name));
  }
  return members;
}
