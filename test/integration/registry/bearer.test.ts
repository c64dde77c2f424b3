import { expect } from 'chai';
import {
  RegistryAuthError, RegistryClient, parseRegistryConfig, type CredentialLookup,
} from '../../../src/registry/index.js';
import { pushImage } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';
import { startTokenServer, type RunningTokenServer } from '../../support/registry-token-server.js';

const USER = 'token-bot';
const PASSWORD = 'bearer-pass-31415';

function lookup(registry: RunningRegistry, password: string): CredentialLookup {
  return parseRegistryConfig(`"${registry.host}":\n  ".*":\n    security: { basic: { username: ${USER}, password: "${password}" } }\n`, 'registry.yaml');
}

describe('RegistryClient with bearer tokens from a token server docker-registry trusts', function () {
  this.timeout(120_000);
  let tokens: RunningTokenServer | undefined;
  let registry: RunningRegistry | undefined;
  const pushed = new Map<string, string>();

  before(async () => {
    tokens = await startTokenServer({ username: USER, password: PASSWORD });
    registry = await startRegistry({ token: tokens.registryAuth });
    for (const tag of ['a', 'b', 'c']) {
      pushed.set(tag, await pushImage({ host: registry.host, username: USER, password: PASSWORD }, 'team/tokened', tag, { content: `tokened ${tag}` }));
    }
  });
  after(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('fetches a token with basic credentials and reuses it for the same scope', async () => {
    const client = new RegistryClient({ credentials: lookup(registry!, PASSWORD), pageSize: 1 });
    try {
      const before = tokens!.requests.length;
      expect(await client.listTags(`${registry!.host}/team/tokened`)).to.have.members(['a', 'b', 'c']);
      expect(await client.manifestDigest(`${registry!.host}/team/tokened`, 'b')).to.equal(pushed.get('b'));
      const mine = tokens!.requests.slice(before);
      expect(mine).to.deep.equal([{ scopes: ['repository:team/tokened:pull'], user: USER }]);
    } finally {
      await client.close();
    }
  });

  it('asks for a new token per repository scope', async () => {
    await pushImage({ host: registry!.host, username: USER, password: PASSWORD }, 'team/second', 'x', { content: 'tokened a' });
    const client = new RegistryClient({ credentials: lookup(registry!, PASSWORD) });
    try {
      const before = tokens!.requests.length;
      await client.manifestDigest(`${registry!.host}/team/tokened`, 'a');
      expect(await client.manifestDigest(`${registry!.host}/team/second`, 'x')).to.equal(pushed.get('a'));
      await client.manifestDigest(`${registry!.host}/team/tokened`, 'c');
      expect(tokens!.requests.slice(before).map((r) => r.scopes[0])).to.deep.equal(['repository:team/tokened:pull', 'repository:team/second:pull']);
    } finally {
      await client.close();
    }
  });

  it('reports a password the token server refuses as RegistryAuthError without the password', async () => {
    const wrong = 'wrong-bearer-pass-2718';
    const client = new RegistryClient({ credentials: lookup(registry!, wrong) });
    try {
      const error = await client.listTags(`${registry!.host}/team/tokened`).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect((error as Error).message).to.include(registry!.host).and.include('team/tokened').and.include('token server');
      expect((error as Error).message).not.to.include(wrong);
    } finally {
      await client.close();
    }
  });

  it('reports anonymous access without a grant as RegistryAuthError', async () => {
    const client = new RegistryClient();
    try {
      const error = await client.manifestDigest(`${registry!.host}/team/tokened`, 'a').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect((error as Error).message).to.include('anonymous access does not grant repository:team/tokened:pull (insufficient_scope)');
    } finally {
      await client.close();
    }
  });
});
