import { z } from 'zod';

/** What the watcher keeps per watch in the StateStore under `watch:<key>`: the last commit
 * whose run ended (successfully or not). Read back from disk or Redis, so it is checked. */
export const WatchState = z.object({
  commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/),
  branch: z.string(),
  ok: z.boolean(),
  /** ISO-8601, when the run ended */
  at: z.string(),
});
export type WatchState = z.infer<typeof WatchState>;
