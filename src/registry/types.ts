/** A username and password for one registry (and, in a Makisu config, some of its repositories). */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Where the client gets credentials and learns which hosts speak plain HTTP. Implemented by the
 * Makisu registry config, docker config.json, pull secrets, and their combination.
 */
export interface CredentialLookup {
  /** Credentials for `repository` on `host` (host[:port], Docker Hub as docker.io), if any. */
  credentialsFor(host: string, repository: string): Credentials | undefined;
  /** True when the host is marked to be spoken to over plain HTTP (`tls.client.disabled`). */
  isInsecure(host: string): boolean;
  /** Host → credentials, for writing a docker config.json for a builder. */
  dockerAuths(): ReadonlyMap<string, Credentials>;
}

/** What `getManifest` returns: the exact bytes, so a digest or a copy stays byte-identical. */
export interface Manifest {
  readonly mediaType: string;
  readonly body: Buffer;
  /** `sha256:<hex>` of the body (checked against Docker-Content-Digest when the registry sends it) */
  readonly digest: string;
}

/** The last rate-limit headers a registry sent (Docker Hub sends `ratelimit-*`). */
export interface RateLimitState {
  readonly limit?: number;
  readonly remaining?: number;
  /** ms since epoch when these were seen */
  readonly observedAt: number;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
}
