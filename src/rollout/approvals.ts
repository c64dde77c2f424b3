import { createHash } from 'node:crypto';
import type { StateStore } from '../store/index.js';
import { ApprovalClosedError, ApprovalNotFoundError } from './errors.js';
import { workloadKey, type ContainerChange, type WorkloadRef } from './types.js';

/** An update waiting for `votesRequired` approvals before its deadline (Keel's keel.sh/approvals). */
export interface Approval {
  /** Short and stable: the same update of the same workload always gets the same id */
  readonly id: string;
  readonly workload: WorkloadRef;
  readonly changes: readonly ContainerChange[];
  readonly votesRequired: number;
  readonly voters: readonly string[];
  readonly rejected: boolean;
  readonly rejectedBy?: string;
  /** ISO-8601 */
  readonly createdAt: string;
  readonly deadline: string;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

/**
 * The state machine: a rejection is final; enough votes approve (even when the deadline passes
 * before the controller gets to apply it); otherwise past the deadline it has expired.
 */
export function approvalStatus(approval: Approval, now: Date): ApprovalStatus {
  if (approval.rejected) return 'rejected';
  if (approval.voters.length >= approval.votesRequired) return 'approved';
  if (Date.parse(approval.deadline) <= now.getTime()) return 'expired';
  return 'pending';
}

/** `a-` + 10 hex of a hash over the workload and the images it would roll to. */
export function approvalId(workload: WorkloadRef, changes: readonly ContainerChange[]): string {
  const text = `${workloadKey(workload)}|${changes.map((c) => `${c.init ? 'init:' : ''}${c.container}=${c.to}`).sort().join(',')}`;
  return `a-${createHash('sha256').update(text).digest('hex').slice(0, 10)}`;
}

export function describeChanges(changes: readonly ContainerChange[]): string {
  return changes.map((c) => `${c.container}: ${c.from} -> ${c.to}`).join(', ');
}

const INDEX_KEY = 'rollout:approvals';
const keyOf = (id: string): string => `approval:${id}`;

/**
 * Approvals in the StateStore, one key per approval plus an index. Votes (`approve`, `reject`,
 * from the CLI or the HTTP API) write only the approval's own key; creating and removing, done by
 * the controller, also write the index. So a vote and the controller never rewrite the same key
 * except when the controller removes a finished approval.
 */
export class ApprovalBook {
  constructor(private readonly store: StateStore) {}

  async get(id: string): Promise<Approval | undefined> {
    return this.store.getState<Approval>(keyOf(id));
  }

  /** Every approval the index knows, oldest first. */
  async list(): Promise<Approval[]> {
    const ids = (await this.store.getState<string[]>(INDEX_KEY)) ?? [];
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((a): a is Approval => a !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Creates the approval unless one with the same id exists (also a rejected one); returns the stored one. */
  async request(workload: WorkloadRef, changes: readonly ContainerChange[], votesRequired: number, deadlineHours: number, now: Date): Promise<{ approval: Approval; created: boolean }> {
    const id = approvalId(workload, changes);
    const existing = await this.get(id);
    if (existing) return { approval: existing, created: false };
    const approval: Approval = {
      id,
      workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name },
      changes,
      votesRequired,
      voters: [],
      rejected: false,
      createdAt: now.toISOString(),
      deadline: new Date(now.getTime() + deadlineHours * 3_600_000).toISOString(),
    };
    await this.store.setState(keyOf(id), approval);
    const ids = (await this.store.getState<string[]>(INDEX_KEY)) ?? [];
    if (!ids.includes(id)) await this.store.setState(INDEX_KEY, [...ids, id]);
    return { approval, created: true };
  }

  /** One vote per voter; returns the approval after the vote. */
  async approve(id: string, voter: string, now: Date): Promise<Approval> {
    const approval = await this.open(id, now);
    if (approval.voters.includes(voter)) return approval;
    const next: Approval = { ...approval, voters: [...approval.voters, voter] };
    await this.store.setState(keyOf(id), next);
    return next;
  }

  async reject(id: string, voter: string, now: Date): Promise<Approval> {
    const approval = await this.open(id, now);
    const next: Approval = { ...approval, rejected: true, rejectedBy: voter };
    await this.store.setState(keyOf(id), next);
    return next;
  }

  /**
   * Takes a finished approval out of the list. A rejected one stays stored, so the same update is
   * not asked for again; an expired or applied one is forgotten (a later push may ask again).
   */
  async close(approval: Approval, now: Date): Promise<void> {
    if (approvalStatus(approval, now) === 'rejected') {
      await this.unindex(approval.id);
      return;
    }
    await this.remove(approval.id);
  }

  /** Forgets an approval entirely. */
  async remove(id: string): Promise<void> {
    await this.store.deleteState(keyOf(id));
    await this.unindex(id);
  }

  private async unindex(id: string): Promise<void> {
    const ids = (await this.store.getState<string[]>(INDEX_KEY)) ?? [];
    if (ids.includes(id)) await this.store.setState(INDEX_KEY, ids.filter((x) => x !== id));
  }

  private async open(id: string, now: Date): Promise<Approval> {
    const approval = await this.get(id);
    if (!approval) throw new ApprovalNotFoundError(id);
    const status = approvalStatus(approval, now);
    if (status === 'rejected' || status === 'expired') throw new ApprovalClosedError(id, status);
    return approval;
  }
}
