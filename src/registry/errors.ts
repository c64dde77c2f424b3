import { KeelsonError } from '../errors.js';

/** Where a registry failure happened: the host, and the repository when there was one. */
export interface RegistryErrorContext {
  readonly registry: string;
  readonly repository?: string;
}

function where(context: RegistryErrorContext): string {
  return context.repository ? `registry ${context.registry}, repository ${context.repository}` : `registry ${context.registry}`;
}

/**
 * Credentials were refused (401) or do not grant access (403). Retrying will not help: the
 * credentials in the registry config, docker config or pull secret must be fixed.
 */
export class RegistryAuthError extends KeelsonError {
  readonly code = 'KEELSON_REGISTRY_AUTH';
  readonly exitCode = 2;
  override readonly name = 'RegistryAuthError';
  readonly registry: string;
  readonly repository?: string;

  constructor(context: RegistryErrorContext, readonly status: 401 | 403, detail: string, options?: { cause?: unknown }) {
    super(`${where(context)}: ${status === 401 ? 'authentication failed' : 'access denied'} (HTTP ${status}): ${detail}`, options);
    this.registry = context.registry;
    this.repository = context.repository;
  }
}

/** What a 404 was about, when the registry says (a HEAD answer has no body to say it). */
export type NotFoundKind = 'repository' | 'manifest' | 'blob' | 'repository or tag';

export class RegistryNotFoundError extends KeelsonError {
  readonly code = 'KEELSON_REGISTRY_NOT_FOUND';
  readonly exitCode = 2;
  override readonly name = 'RegistryNotFoundError';
  readonly registry: string;
  readonly repository?: string;

  constructor(context: RegistryErrorContext, readonly kind: NotFoundKind, readonly reference: string | undefined, detail: string) {
    super(`${where(context)}: ${kind}${reference ? ` "${reference}"` : ''} not found: ${detail}`);
    this.registry = context.registry;
    this.repository = context.repository;
  }
}

/** Connection refused, DNS failure, TLS failure or timeout: the registry could not be asked. */
export class RegistryUnreachableError extends KeelsonError {
  readonly code = 'KEELSON_REGISTRY_UNREACHABLE';
  readonly exitCode = 1;
  override readonly name = 'RegistryUnreachableError';
  readonly registry: string;
  readonly repository?: string;

  constructor(context: RegistryErrorContext, detail: string, options?: { cause?: unknown }) {
    super(`${where(context)}: unreachable: ${detail}; check the host and port, and that it speaks the scheme keelson used (plain HTTP only for loopback hosts and tls.client.disabled)`, options);
    this.registry = context.registry;
    this.repository = context.repository;
  }
}

/** 429 with a Retry-After longer than we are willing to wait, or 429 after every retry. */
export class RegistryRateLimitedError extends KeelsonError {
  readonly code = 'KEELSON_REGISTRY_RATE_LIMITED';
  readonly exitCode = 1;
  override readonly name = 'RegistryRateLimitedError';
  readonly registry: string;
  readonly repository?: string;

  constructor(context: RegistryErrorContext, readonly retryAfterMs: number | undefined) {
    super(`${where(context)}: rate limited (HTTP 429)` +
      (retryAfterMs === undefined ? '' : `; the registry asks to retry in ${Math.ceil(retryAfterMs / 1000)} s`));
    this.registry = context.registry;
    this.repository = context.repository;
  }
}

/** An answer we cannot use: an unexpected status, a 5xx after every retry, or a malformed body. */
export class RegistryResponseError extends KeelsonError {
  readonly code = 'KEELSON_REGISTRY_BAD_RESPONSE';
  readonly exitCode = 1;
  override readonly name = 'RegistryResponseError';
  readonly registry: string;
  readonly repository?: string;

  constructor(context: RegistryErrorContext, readonly status: number | undefined, detail: string, options?: { cause?: unknown }) {
    super(`${where(context)}: ${status === undefined ? '' : `HTTP ${status}: `}${detail}`, options);
    this.registry = context.registry;
    this.repository = context.repository;
  }
}

export type RegistryError = RegistryAuthError | RegistryNotFoundError | RegistryUnreachableError
  | RegistryRateLimitedError | RegistryResponseError;
