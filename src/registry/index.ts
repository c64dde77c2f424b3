/**
 * The registry client: OCI distribution API over undici, credentials from the Makisu-style
 * registry config, docker config.json and pull secrets, and docker-style image references.
 */
export {
  RegistryClient, MANIFEST_MEDIA_TYPES, DEFAULT_CHUNK_SIZE, networkCode,
  type RegistryClientOptions, type RepositoryInput, type BlobPushResult, type PushBlobOptions,
} from './client.js';
export {
  parseImageReference, formatImageReference, normalizeRegistryHost, isLoopbackHost, DOCKER_HUB,
  type ImageReference, type RepositoryRef,
} from './reference.js';
export {
  RegistryAuthError, RegistryNotFoundError, RegistryUnreachableError, RegistryRateLimitedError, RegistryResponseError,
  type RegistryError, type NotFoundKind,
} from './errors.js';
export {
  RegistryConfig, DockerConfigCredentials, loadRegistryConfig, parseRegistryConfig, loadDockerConfig, parseDockerConfig,
  dockerConfigFromSecret, combineCredentials, anonymousCredentials, toDockerConfigJson, usesPlainHttp,
  type RegistryConfigEntry,
} from './credentials.js';
export type { Credentials, CredentialLookup, Manifest, RateLimitState, RequestOptions } from './types.js';
export { parseRetryAfter } from './http-headers.js';
