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

/**
 * The server cannot listen where it was asked: the port is taken (exit 1: something else holds
 * it), or the address or port cannot be used at all (exit 2: bad input).
 */
export class ListenError extends KeelsonError {
  readonly code: 'KEELSON_PORT_IN_USE' | 'KEELSON_LISTEN';
  readonly exitCode: 1 | 2;
  override readonly name = 'ListenError';

  constructor(readonly address: string, systemCode: string | undefined, options?: { cause?: unknown }) {
    const why = LISTEN_PROBLEMS[systemCode ?? ''];
    super(`cannot listen on ${address}: ${why?.message ?? `the system refused (${systemCode ?? 'unknown error'})`}`, options);
    this.code = systemCode === 'EADDRINUSE' ? 'KEELSON_PORT_IN_USE' : 'KEELSON_LISTEN';
    this.exitCode = why?.exitCode ?? 1;
  }
}

const LISTEN_PROBLEMS: Record<string, { message: string; exitCode: 1 | 2 }> = {
  EADDRINUSE: { message: 'the port is in use by another process; stop it or choose another port', exitCode: 1 },
  EACCES: { message: 'permission denied (ports below 1024 need privileges); choose a port from 1024 up', exitCode: 1 },
  EADDRNOTAVAIL: { message: 'no network interface has this address; give an address of this machine (or 0.0.0.0)', exitCode: 2 },
  ENOTFOUND: { message: 'no such host; give an address of this machine (or 0.0.0.0)', exitCode: 2 },
};
