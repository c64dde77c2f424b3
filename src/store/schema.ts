import { z } from 'zod';
import type { RunRecord } from './types.js';

const Phase = z.enum(['queued', 'running', 'succeeded', 'failed', 'skipped', 'interrupted', 'cancelled']);
// Reasons are open-ended on read: a newer keelson may have recorded a constant we do not know.
const Reason = z.string().min(1);

const PhaseTransition = z.object({
  phase: Phase,
  reason: Reason,
  message: z.string(),
  at: z.string(),
});

/**
 * A run record as read back from disk or Redis. Both can be edited or shared with another
 * keelson version, so the fields we rely on are checked; unknown fields are kept as they are.
 */
export const StoredRunRecord = z.looseObject({
  id: z.string().min(1),
  kind: z.enum(['build', 'deploy', 'ci']),
  watch: z.string(),
  repo: z.string(),
  branch: z.string(),
  commit: z.string(),
  phase: Phase,
  reason: Reason,
  message: z.string(),
  phases: z.array(PhaseTransition),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  exitCode: z.number().int().optional(),
  image: z.looseObject({ ref: z.string(), digest: z.string().optional(), pushed: z.boolean() }).optional(),
  retryOf: z.string().optional(),
  skippedCommits: z.array(z.string()).optional(),
  executor: z.string().optional(),
  owner: z.string().optional(),
  processes: z.array(z.looseObject({ pid: z.number().int().positive(), startTime: z.string().optional(), command: z.string() })).optional(),
});

/** Parses stored JSON text into a record, or returns a description of what is wrong. */
export function parseStoredRun(text: string): { record: RunRecord } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { problem: `not JSON (${(error as Error).message})` };
  }
  const result = StoredRunRecord.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return { problem: `field ${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  return { record: result.data as unknown as RunRecord };
}
