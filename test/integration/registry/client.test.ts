import { expect } from 'chai';
import { Duration } from '../../../src/domain/index.js';
import { redactSecrets } from '../../../src/log/index.js';
import {
  RegistryAuthError, RegistryClient, RegistryNotFoundError, RegistryUnreachableError, parseRegistryConfig,
} from '../../../src/registry/index.js';
import { pushImage } from '../../support/images.js';
import { freePort, startRegistry, type RunningRegistry } from '../../support/registry.js';

function credentialsFor(registry: RunningRegistry, password = registry.password!) {
  return parseRegistryConfig(`
"${registry.host}":
  ".*":
    security:
      basic: { username: ${registry.username}, password: "${password}" }
`, 'registry.yaml');
}

describe('RegistryClient against a real docker-registry without auth', function () {
  this.timeout(120_000);
  let registry: RunningRegistry | undefined;
  const pushed = new Map<string, string>();
  let client: RegistryClient;

  before(async () => {
    registry = await startRegistry();
    for (const tag of ['1.0.0', '1.1.0', '2.0.0-rc.1']) pushed.set(tag, await pushImage(registry, 'team/app', tag, { content: `app ${tag}` }));
    client = new RegistryClient({ pageSize: 1 });
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('lists every tag across pages of one (Link pagination)', async () => {
    expect(await client.listTags(`${registry!.host}/team/app`)).to.have.members([...pushed.keys()]);
    expect(await client.listTags(`${registry!.host}/team/app`)).to.have.lengthOf(3);
  });

  it('HEADs the digest buildah pushed, and the same digest by digest', async () => {
    const repo = `${registry!.host}/team/app`;
    expect(await client.manifestDigest(repo, '1.1.0')).to.equal(pushed.get('1.1.0'));
    expect(await client.manifestDigest(repo, pushed.get('1.0.0')!)).to.equal(pushed.get('1.0.0'));
  });

  it('gets the manifest bytes, whose sha256 is the digest', async () => {
    const manifest = await client.getManifest({ registry: registry!.host, repository: 'team/app' }, '1.0.0');
    expect(manifest.digest).to.equal(pushed.get('1.0.0'));
    expect(manifest.mediaType).to.match(/manifest/);
    expect(JSON.parse(manifest.body.toString()).schemaVersion).to.equal(2);
  });

  it('reports an unknown tag as RegistryNotFoundError naming the tag, host and repository', async () => {
    const error = await client.manifestDigest(`${registry!.host}/team/app`, '9.9.9').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RegistryNotFoundError);
    expect((error as RegistryNotFoundError).code).to.equal('KEELSON_REGISTRY_NOT_FOUND');
    expect((error as Error).message).to.include(registry!.host).and.include('team/app').and.include('9.9.9');
  });

  it('reports an unknown repository in a tag list as RegistryNotFoundError of kind repository', async () => {
    const error = await client.listTags(`${registry!.host}/team/nothing-here`).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RegistryNotFoundError);
    expect((error as RegistryNotFoundError).kind).to.equal('repository');
    expect((error as Error).message).to.include('team/nothing-here');
  });

  it('knows which blobs exist', async () => {
    const manifest = JSON.parse((await client.getManifest(`${registry!.host}/team/app`, '1.0.0')).body.toString()) as { config: { digest: string } };
    expect(await client.blobExists(`${registry!.host}/team/app`, manifest.config.digest)).to.equal(true);
    expect(await client.blobExists(`${registry!.host}/team/app`, `sha256:${'0'.repeat(64)}`)).to.equal(false);
  });

  it('gives the same digest for the same content pushed under another tag', async () => {
    const again = await pushImage(registry!, 'team/other', 'copy', { content: 'app 1.0.0' });
    expect(again).to.equal(pushed.get('1.0.0'));
    expect(await client.manifestDigest(`${registry!.host}/team/other`, 'copy')).to.equal(pushed.get('1.0.0'));
  });

  it('rejects when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop now'));
    const error = await client.listTags(`${registry!.host}/team/app`, { signal: controller.signal }).catch((e: unknown) => e);
    expect((error as Error).message).to.equal('stop now');
  });
});

describe('RegistryClient against a real docker-registry with htpasswd auth', function () {
  this.timeout(120_000);
  let registry: RunningRegistry | undefined;
  let digest: string;

  before(async () => {
    registry = await startRegistry({ auth: true });
    digest = await pushImage(registry, 'team/secure', 'v1', { content: 'secure v1' });
    await pushImage(registry, 'team/secure', 'v2', { content: 'secure v2' });
  });
  after(() => registry?.stop());

  it('authenticates with basic credentials from the registry config', async () => {
    const client = new RegistryClient({ credentials: credentialsFor(registry!), pageSize: 1 });
    try {
      expect(await client.listTags(`${registry!.host}/team/secure`)).to.have.members(['v1', 'v2']);
      expect(await client.manifestDigest(`${registry!.host}/team/secure`, 'v1')).to.equal(digest);
    } finally {
      await client.close();
    }
  });

  it('turns a wrong password into RegistryAuthError naming host and repository, never the password', async () => {
    const wrong = 'not-the-password-4711';
    const client = new RegistryClient({ credentials: credentialsFor(registry!, wrong) });
    try {
      const error = await client.manifestDigest(`${registry!.host}/team/secure`, 'v1').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryAuthError);
      const auth = error as RegistryAuthError;
      expect(auth.code).to.equal('KEELSON_REGISTRY_AUTH');
      expect(auth.status).to.equal(401);
      expect(auth.message).to.include(registry!.host).and.include('team/secure').and.include(registry!.username!);
      expect(auth.message).not.to.include(wrong);
      expect(redactSecrets(`login with ${wrong}`)).not.to.include(wrong);
    } finally {
      await client.close();
    }
  });

  it('says credentials are needed when it has none', async () => {
    const client = new RegistryClient();
    try {
      const error = await client.listTags(`${registry!.host}/team/secure`).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect((error as Error).message).to.include('none are configured');
    } finally {
      await client.close();
    }
  });
});

describe('RegistryClient and an unreachable registry', function () {
  it('turns a closed port into RegistryUnreachableError naming the host', async () => {
    const port = await freePort();
    const client = new RegistryClient({ timeout: Duration.ofSeconds(5) });
    try {
      const error = await client.manifestDigest(`127.0.0.1:${port}/team/app`, 'latest').catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryUnreachableError);
      expect((error as RegistryUnreachableError).code).to.equal('KEELSON_REGISTRY_UNREACHABLE');
      expect((error as Error).message).to.include(`127.0.0.1:${port}`).and.include('connection refused');
    } finally {
      await client.close();
    }
  });
});
