import { expect } from 'chai';
import { Duration } from '../../../src/domain/index.js';
import { RegistryClient, type RegistryClientOptions } from '../../../src/registry/index.js';

describe('RegistryClient options', () => {
  it('refuses an unknown option, listing the known ones', () => {
    expect(() => new RegistryClient({ pagesize: 5 } as unknown as RegistryClientOptions))
      .to.throw(TypeError, 'unknown option "pagesize"').with.property('message').that.includes('pageSize');
  });

  const bad: [RegistryClientOptions, string][] = [
    [{ pageSize: 0 }, 'pageSize must be a whole number >= 1'],
    [{ pageSize: 1.5 }, 'pageSize must be a whole number >= 1'],
    [{ maxRetries: -1 }, 'maxRetries must be a whole number >= 0'],
    [{ requestsPerSecond: 0 }, 'requestsPerSecond must be > 0'],
    [{ timeout: Duration.ofMilliseconds(0) }, 'timeout must be > 0'],
  ];
  for (const [options, message] of bad) {
    it(`checks ${JSON.stringify(options)} in the constructor`, () => {
      expect(() => new RegistryClient(options)).to.throw(RangeError, message);
    });
  }

  it('accepts the documented options', async () => {
    const client = new RegistryClient({ pageSize: 50, requestsPerSecond: 2, maxRetries: 0, timeout: Duration.ofSeconds(5) });
    expect(client.rateLimit('127.0.0.1:5000')).to.equal(undefined);
    await client.close();
  });
});
