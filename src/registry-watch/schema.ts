import { z } from 'zod';

/** Per target: what it declared (to notice a rollout or a manual change) and what was last seen. */
export const TargetBaseline = z.object({
  current: z.string(),
  currentDigest: z.string().optional(),
  tag: z.string(),
  digest: z.string().optional(),
});
export type TargetBaseline = z.infer<typeof TargetBaseline>;

/** The value under `registry:tags:<repository>` or `registry:digest:<repository>:<tag>`. */
export const StoredBaselines = z.object({
  targets: z.record(z.string(), TargetBaseline),
});
export type StoredBaselines = z.infer<typeof StoredBaselines>;
