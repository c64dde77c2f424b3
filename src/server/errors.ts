import { KeelsonError } from '../errors.js';

/**
 * A request the server refuses: malformed body (400), missing or wrong credentials (401/403),
 * nothing there (404), too large (413). The message is one line and is sent to the client.
 */
export class RequestError extends KeelsonError {
  readonly code = 'KEELSON_BAD_REQUEST';
  readonly exitCode = 2;
  override readonly name = 'RequestError';

  constructor(readonly status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
