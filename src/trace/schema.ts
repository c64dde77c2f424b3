import { z } from 'zod';

const RolloutTrace = z.object({
  workload: z.string(),
  container: z.string(),
  from: z.string(),
  fromDigest: z.string().optional(),
  image: z.string(),
  digest: z.string(),
  at: z.string(),
  approval: z.string().optional(),
});

const CiTrace = z.object({
  workload: z.string(),
  run: z.string(),
  exitCode: z.number().int(),
  finishedAt: z.string(),
});

/**
 * `trace:<digest>` as read back from the store: another keelson version (or a hand edit) may
 * have written it, so a broken entry is dropped, not fatal.
 */
export const StoredDigestTrace = z.object({
  rollouts: z.array(z.unknown()).catch([]).transform((items) => items.flatMap((i) => {
    const parsed = RolloutTrace.safeParse(i);
    return parsed.success ? [parsed.data] : [];
  })),
  ci: z.array(z.unknown()).catch([]).transform((items) => items.flatMap((i) => {
    const parsed = CiTrace.safeParse(i);
    return parsed.success ? [parsed.data] : [];
  })),
}).catch({ rollouts: [], ci: [] });

/** Where `keelson ci` leaves its result on the workload it ran in, for the daemon to trace. */
export const CI_RESULT_ANNOTATION = 'keelson.dev/ci-result';

/** The `keelson.dev/ci-result` annotation `keelson ci` leaves on its workload (JSON). */
export const CiResultAnnotation = z.object({
  run: z.string().min(1),
  exitCode: z.number().int(),
  finishedAt: z.string().min(1),
  /** The images the pod ran, per container: `image` as in the spec, `digest` when the runtime reported one */
  images: z.array(z.object({ container: z.string(), image: z.string(), digest: z.string().optional() })),
});
export type CiResultAnnotation = z.infer<typeof CiResultAnnotation>;
