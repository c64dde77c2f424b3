import { KeelsonError } from '../errors.js';

/** A copy could not be made or did not come out identical (the destination is named). */
export class PromoteError extends KeelsonError {
  readonly code = 'KEELSON_PROMOTE';
  readonly exitCode = 1;
  override readonly name = 'PromoteError';
}

/** The source is something we do not copy (a schema1 manifest, an unknown media type). */
export class UnsupportedManifestError extends KeelsonError {
  readonly code = 'KEELSON_PROMOTE_UNSUPPORTED';
  readonly exitCode = 2;
  override readonly name = 'UnsupportedManifestError';
}
