import { expect } from 'chai';
import { registryErrorKind, type RegistryErrorKind } from '../../../src/metrics/index.js';
import {
  RegistryAuthError, RegistryNotFoundError, RegistryRateLimitedError, RegistryResponseError, RegistryUnreachableError,
} from '../../../src/registry/index.js';

describe('registryErrorKind: what keelson_registry_errors_total counts a failure as', () => {
  const where = { registry: 'reg.example', repository: 'team/app' };
  const timeout = new Error('no answer');
  timeout.name = 'TimeoutError';
  const cases: Array<[string, unknown, RegistryErrorKind]> = [
    ['401', new RegistryAuthError(where, 401, 'bad credentials'), 'auth'],
    ['403', new RegistryAuthError(where, 403, 'denied'), 'auth'],
    ['429', new RegistryRateLimitedError(where, 60_000), 'rate_limited'],
    ['503', new RegistryResponseError(where, 503, 'unavailable'), 'server'],
    ['400', new RegistryResponseError(where, 400, 'bad request'), 'other'],
    ['a malformed body', new RegistryResponseError(where, undefined, 'not JSON'), 'other'],
    ['404', new RegistryNotFoundError(where, 'manifest', 'v1', 'unknown'), 'not_found'],
    ['connection refused', new RegistryUnreachableError(where, 'HEAD http://reg.example: connection refused'), 'unreachable'],
    ['no answer in time', new RegistryUnreachableError(where, 'HEAD http://reg.example: timed out waiting for an answer'), 'timeout'],
    ['an AbortSignal.timeout', timeout, 'timeout'],
    ['anything else', new Error('boom'), 'other'],
    ['a non-error', 'boom', 'other'],
  ];
  for (const [what, error, kind] of cases) {
    it(`counts ${what} as ${kind}`, () => expect(registryErrorKind(error)).to.equal(kind));
  }
});
