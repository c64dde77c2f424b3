import { KeelsonError } from '../errors.js';

/**
 * GitHub refused or failed a release step. Names the repository and, for the usual causes, what
 * to fix: 401 the token, 404 the repository name or the token's access, 422 the input.
 */
export class ReleaseError extends KeelsonError {
  readonly code = 'KEELSON_RELEASE';
  readonly exitCode = 1;
  override readonly name = 'ReleaseError';

  constructor(readonly repo: string, readonly status: number | undefined, detail: string, options?: { cause?: unknown }) {
    super(`release in ${repo}: ${detail}`, options);
  }
}
