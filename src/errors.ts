/**
 * The error hierarchy shared by every part of keelson. Callers match on `code`, never on message
 * text. `exitCode` 2 means bad input or usage (retrying will not help, nothing was changed);
 * 1 means a step failed.
 */
export abstract class KeelsonError extends Error {
  abstract readonly code: `KEELSON_${string}`;
  abstract readonly exitCode: 1 | 2;
}

/** Bad command-line usage: an unknown flag, a missing argument, a malformed `--set`. */
export class UsageError extends KeelsonError {
  readonly code = 'KEELSON_USAGE';
  readonly exitCode = 2;
  override readonly name = 'UsageError';
}

/**
 * Bad input from a file or another outside source, with where it was found: `where` is a file
 * (optionally `file:line`), a field path or a workload name, and comes first in the message.
 */
export class InputError extends KeelsonError {
  readonly code = 'KEELSON_BAD_INPUT';
  readonly exitCode = 2;
  override readonly name = 'InputError';

  constructor(readonly where: string, detail: string, options?: { cause?: unknown }) {
    super(`${where}: ${detail}`, options);
  }
}

/** A pipeline step or run failed; the run record says why. */
export class PipelineFailedError extends KeelsonError {
  readonly code = 'KEELSON_PIPELINE_FAILED';
  readonly exitCode = 1;
  override readonly name = 'PipelineFailedError';
}

/** Something outside keelson (git, a registry, the API server) failed; retrying may help. */
export class ExternalError extends KeelsonError {
  readonly code = 'KEELSON_EXTERNAL';
  readonly exitCode = 1;
  override readonly name = 'ExternalError';
}

export function isKeelsonError(error: unknown): error is KeelsonError {
  return error instanceof KeelsonError;
}

/** The message of any thrown value, for logs and run records. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
