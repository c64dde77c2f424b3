import { z } from 'zod';

/**
 * `image:<digest>` in the StateStore: the build run that pushed an image, so that the deploy of
 * that digest names the commit it was built from. Read back tolerantly (another keelson may
 * have written it).
 */
export const BuiltImage = z.object({
  runId: z.string().min(1),
  watch: z.string(),
  repo: z.string(),
  branch: z.string(),
  commit: z.string(),
  /** The first pushed reference, e.g. `127.0.0.1:5000/team/app:main` */
  ref: z.string(),
});
export type BuiltImage = z.infer<typeof BuiltImage>;

/** `deployed:<digest>`: written when a deploy of the digest starts, so that it never runs twice. */
export const DeployedMark = z.object({
  runId: z.string().min(1),
  /** ISO-8601 */
  at: z.string(),
});
export type DeployedMark = z.infer<typeof DeployedMark>;
