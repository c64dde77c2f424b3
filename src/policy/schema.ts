import { z } from 'zod';

export const POLICY_EXPECTED = 'expected all|major|minor|patch|force|never, glob:PATTERN or regexp:EXPR';

/** A policy's text as found in an annotation, a config file or on the command line. */
export const PolicyText = z.string().trim().min(1, `empty policy (${POLICY_EXPECTED})`);
export type PolicyText = z.infer<typeof PolicyText>;

/** `true` / `false` as Keel's boolean annotations spell them (`keel.sh/matchTag`, `keel.sh/matchPreRelease`). */
export const BooleanText = z.enum(['true', 'false'], { error: 'expected true or false' }).transform((v) => v === 'true');
