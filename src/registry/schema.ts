import { z } from 'zod';

// ---- Answers from registries and token servers: only the fields we read, unknown ones ignored.

/** GET /v2/<name>/tags/list. distribution sends `"tags": null` for a repository without tags. */
export const TagList = z.object({
  name: z.string().optional(),
  tags: z.array(z.string()).nullish().transform((tags) => tags ?? []),
});
export type TagList = z.infer<typeof TagList>;

/**
 * A token server's answer (distribution docs, "Token Authentication Specification"): `token`, or
 * `access_token` from OAuth2-style servers; `expires_in` seconds, 60 when absent.
 */
export const TokenResponse = z.object({
  token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  expires_in: z.number().positive().optional().catch(undefined),
}).refine((value) => value.token !== undefined || value.access_token !== undefined, 'expected "token" or "access_token"');
export type TokenResponse = z.infer<typeof TokenResponse>;

/** The error body of the distribution API: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`. */
export const RegistryErrors = z.object({
  errors: z.array(z.object({
    code: z.string().catch('UNKNOWN'),
    message: z.string().optional().catch(undefined),
  })).catch([]),
});
export type RegistryErrors = z.infer<typeof RegistryErrors>;

// ---- Files users write: strict, every bad field reported.

const PathRef = z.strictObject({ path: z.string().min(1, 'expected a file path') });

/** One repository pattern's settings in the Makisu registry config (uber/makisu docs/REGISTRY.md). */
export const RepositoryConfig = z.strictObject({
  // Makisu's own tuning keys: accepted so a Makisu config loads unchanged; keelson ignores them.
  concurrency: z.number().int().positive().optional(),
  timeout: z.string().optional(),
  retries: z.number().int().nonnegative().optional(),
  push_rate: z.number().positive().optional(),
  push_chunk: z.number().int().optional(),
  security: z.strictObject({
    tls: z.strictObject({
      client: z.strictObject({
        /** true: talk plain HTTP to this host */
        disabled: z.boolean({ error: 'expected true or false' }).optional(),
        cert: PathRef.optional(),
        key: PathRef.optional(),
        passphrase: PathRef.optional(),
      }).optional(),
      ca: z.strictObject({ cert: PathRef }).optional(),
    }).optional(),
    basic: z.strictObject({
      username: z.string({ error: 'expected a string' }),
      password: z.string({ error: 'expected a string' }).optional(),
      /** keelson's addition: read the password from this file (relative to the config file) */
      password_file: z.string({ error: 'expected a file path' }).min(1, 'expected a file path').optional(),
    }).refine((basic) => !(basic.password !== undefined && basic.password_file !== undefined),
      'give either password or password_file, not both').optional(),
  }).optional(),
});
export type RepositoryConfig = z.infer<typeof RepositoryConfig>;

/** `<host>: { <repository regex>: RepositoryConfig }` */
export const RegistryConfigFile = z.record(z.string(), z.record(z.string(), RepositoryConfig, { error: 'expected a map of repository patterns' }),
  { error: 'expected a map of registry hosts' });
export type RegistryConfigFile = z.infer<typeof RegistryConfigFile>;

/** docker's config.json; credsStore / credHelpers are not run (keelson executes no helpers). */
export const DockerConfig = z.object({
  auths: z.record(z.string(), z.object({
    auth: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  }, { error: 'expected an object with auth or username/password' })).optional(),
});
export type DockerConfig = z.infer<typeof DockerConfig>;

/** A Kubernetes Secret of type kubernetes.io/dockerconfigjson (or the legacy kubernetes.io/dockercfg). */
export const DockerConfigSecret = z.object({
  type: z.string().optional(),
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});
