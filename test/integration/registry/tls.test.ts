import { expect } from 'chai';
import { Agent, type Dispatcher } from 'undici';
import { RegistryClient, RegistryUnreachableError, type CredentialLookup } from '../../../src/registry/index.js';
import { pushImage } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/** Counts the requests sent through it, by origin (`https://127.0.0.1:PORT`). */
class CountingAgent extends Agent {
  readonly byOrigin = new Map<string, number>();
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = String(options.origin);
    this.byOrigin.set(origin, (this.byOrigin.get(origin) ?? 0) + 1);
    return super.dispatch(options, handler);
  }
}

describe('RegistryClient on loopback: HTTPS first, plain HTTP only when that fails (as docker)', function () {
  this.timeout(120_000);
  let tls: RunningRegistry | undefined;
  let plain: RunningRegistry | undefined;

  before(async () => {
    [tls, plain] = await Promise.all([startRegistry({ tls: true }), startRegistry()]);
    await Promise.all([pushImage(tls, 'team/app', '1.0.0', { content: 'tls' }), pushImage(plain, 'team/app', '1.0.0', { content: 'plain' })]);
  });
  after(async () => {
    await tls?.stop();
    await plain?.stop();
  });

  function client(credentials?: CredentialLookup) {
    const dispatcher = new CountingAgent();
    const insecureDispatcher = new CountingAgent({ connect: { rejectUnauthorized: false } });
    const c = new RegistryClient({ dispatcher, insecureDispatcher, ...(credentials ? { credentials } : {}) });
    const requests = (origin: string) => (dispatcher.byOrigin.get(origin) ?? 0) + (insecureDispatcher.byOrigin.get(origin) ?? 0);
    const close = async () => {
      await c.close();
      await dispatcher.close();
      await insecureDispatcher.close();
    };
    return { client: c, requests, close };
  }

  const cases: ReadonlyArray<{ name: string; registry: () => RunningRegistry; scheme: 'https:' | 'http:'; https: number; http: number }> = [
    { name: 'speaks HTTPS to a TLS registry on 127.0.0.1 with a self-signed certificate, and never plain HTTP', registry: () => tls!, scheme: 'https:', https: 4, http: 0 },
    { name: 'falls back to plain HTTP once per host for a plain registry on 127.0.0.1, then goes straight there', registry: () => plain!, scheme: 'http:', https: 1, http: 4 },
  ];
  for (const { name, registry, scheme, https, http } of cases) {
    it(name, async () => {
      const { client: c, requests, close } = client();
      const host = registry().host;
      try {
        for (let i = 0; i < 3; i++) expect(await c.listTags(`${host}/team/app`)).to.deep.equal(['1.0.0']);
        expect(await c.manifestDigest(`${host}/team/app`, '1.0.0')).to.match(/^sha256:/);
        expect(c.schemeOf(host)).to.equal(scheme);
        expect(requests(`https://${host}`)).to.equal(https);
        expect(requests(`http://${host}`)).to.equal(http);
      } finally {
        await close();
      }
    });
  }

  // Enough requests that some are still paced behind the first when it learns the scheme.
  it('falls back for every first request sent in parallel to a plain registry, also when another learned the scheme meanwhile', async () => {
    const { client: c, close } = client();
    const host = plain!.host;
    try {
      const answers = await Promise.all(Array.from({ length: 120 }, (_, i) => (i % 2 === 0
        ? c.listTags(`${host}/team/app`)
        : c.manifestDigest(`${host}/team/app`, '1.0.0'))));
      for (const [i, answer] of answers.entries()) {
        if (i % 2 === 0) expect(answer).to.deep.equal(['1.0.0']);
        else expect(answer).to.match(/^sha256:/);
      }
      expect(c.schemeOf(host)).to.equal('http:');
    } finally {
      await close();
    }
  });

  it('checks certificates and never falls back for a host that is neither loopback nor marked insecure', async () => {
    // A name that is not loopback and not in the insecure list: HTTPS or nothing (it resolves nowhere).
    const secureOnly: CredentialLookup = { credentialsFor: () => undefined, isInsecure: () => false, dockerAuths: () => new Map() };
    const { client: c, requests, close } = client(secureOnly);
    const host = `127.0.0.1.nip.invalid:${plain!.host.split(':')[1]}`;
    try {
      let error: unknown;
      try {
        await c.listTags(`${host}/team/app`);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(RegistryUnreachableError);
      expect(requests(`http://${host}`)).to.equal(0);
    } finally {
      await close();
    }
  });
});
