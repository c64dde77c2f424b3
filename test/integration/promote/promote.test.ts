import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImagePromoter } from '../../../src/promote/index.js';
import { RegistryAuthError, RegistryClient, parseImageReference, parseRegistryConfig } from '../../../src/registry/index.js';
import { runKeelson } from '../../support/cli.js';
import { buildahInvocation, pushImage, BUILDAH_BINARY } from '../../support/images.js';
import { startRegistry, type RunningRegistry } from '../../support/registry.js';

/**
 * A pass-through proxy in front of a real registry that records every request and the status
 * the registry gave it: how we see, from the registry's side, whether a blob was mounted (a
 * `POST ...?mount=` answered 201) or uploaded (PATCH/PUT to an upload session).
 */
async function startCountingProxy(target: RunningRegistry): Promise<{ host: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const upstream = new URL(target.url);
  const server = createServer((req, res) => {
    const forward = httpRequest({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      seen.push(`${req.method} ${req.url} ${answer.statusCode}`);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', (error) => res.writeHead(502).end(error.message));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { host: `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, seen, server };
}

function buildah(args: readonly string[], home?: string): Promise<string> {
  const { env } = buildahInvocation();
  return new Promise((resolve, reject) => {
    execFile(BUILDAH_BINARY, args, { env: home ? { ...env, HOME: home } : env }, (error, stdout, stderr) => (error ? reject(new Error(`buildah ${args[0]}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

/** A two-entry image index (amd64 and arm64 entries, each its own image) pushed with buildah. */
async function pushIndex(registry: RunningRegistry, repository: string, tag: string): Promise<string> {
  const { globalArgs, policyPath } = buildahInvocation();
  const id = randomBytes(4).toString('hex');
  // `manifest push` takes no --signature-policy; containers/image also reads ~/.config/containers.
  const home = await mkdtemp(join(tmpdir(), 'keelson-buildah-home-'));
  await mkdir(join(home, '.config', 'containers'), { recursive: true });
  await writeFile(join(home, '.config', 'containers', 'policy.json'), await readFile(policyPath));
  await pushImage(registry, `${repository}-parts`, `amd64-${id}`, { content: `index amd64 ${id}` });
  await pushImage(registry, `${repository}-parts`, `arm64-${id}`, { content: `index arm64 ${id}` });
  const list = `localhost/keelson-index-${id}`;
  await buildah([...globalArgs, 'manifest', 'create', list]);
  try {
    for (const arch of ['amd64', 'arm64']) {
      await buildah([...globalArgs, 'manifest', 'add', '--tls-verify=false', '--arch', arch, '--os', 'linux',
        list, `docker://${registry.host}/${repository}-parts:${arch}-${id}`], home);
    }
    const digestFile = join(tmpdir(), `keelson-index-digest-${id}`);
    await buildah([...globalArgs, 'manifest', 'push', '--all', '--tls-verify=false',
      '--digestfile', digestFile, list, `docker://${registry.host}/${repository}:${tag}`], home);
    const digest = (await readFile(digestFile, 'utf8')).trim();
    await rm(digestFile, { force: true });
    return digest;
  } finally {
    await buildah([...globalArgs, 'manifest', 'rm', list]).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
}

describe('promotion between two real registries', function () {
  this.timeout(300_000);
  let open: RunningRegistry | undefined;     // no auth
  let secured: RunningRegistry | undefined;  // htpasswd basic auth
  let proxy: Awaited<ReturnType<typeof startCountingProxy>> | undefined;
  let dir: string;
  let configPath: string;
  let appDigest: string;
  let indexDigest: string;

  before(async () => {
    [open, secured] = await Promise.all([startRegistry(), startRegistry({ auth: true })]);
    proxy = await startCountingProxy(open);
    appDigest = await pushImage(open, 'team/app', '1.0.0', { content: `promote ${randomBytes(4).toString('hex')}` });
    indexDigest = await pushIndex(open, 'team/multi', '2.0.0');
    dir = await mkdtemp(join(tmpdir(), 'keelson-promote-'));
    configPath = join(dir, 'registry.yaml');
    await writeFile(configPath, [
      `${secured.host}:`,
      '  ".*":',
      '    security:',
      '      basic:',
      `        username: ${secured.username}`,
      `        password: ${secured.password}`,
      '',
    ].join('\n'));
  });
  after(async () => {
    if (proxy) {
      proxy.server.closeAllConnections();
      await new Promise((resolve) => proxy!.server.close(resolve));
    }
    await Promise.all([open?.stop(), secured?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => { proxy!.seen.length = 0; });

  /** A client with the secured registry's credentials, under its own host and under `alsoAs`. */
  function client(...alsoAs: string[]): RegistryClient {
    const entry = (host: string) => `${host}:\n  ".*":\n    security:\n      basic:\n        username: ${secured!.username}\n        password: ${secured!.password}\n`;
    return new RegistryClient({ credentials: parseRegistryConfig([secured!.host, ...alsoAs].map(entry).join(''), 'test') });
  }

  it('copies an image to another registry with auth and to a second tag, by the CLI, with the same digest', async () => {
    const result = await runKeelson(['promote', `${open!.host}/team/app:1.0.0`,
      '--to', `${secured!.host}/prod/app`, '--to', `${secured!.host}/prod/app:stable`, '--registry-config', configPath]);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal([
      `${secured!.host}/prod/app:1.0.0@${appDigest}`,
      `${secured!.host}/prod/app:stable@${appDigest}`,
      '',
    ].join('\n'));
    const check = client();
    try {
      for (const tag of ['1.0.0', 'stable', appDigest]) expect(await check.manifestDigest(`${secured!.host}/prod/app`, tag)).to.equal(appDigest);
    } finally {
      await check.close();
    }
  });

  it('mounts blobs across repositories of one registry instead of uploading them', async () => {
    const registryClient = new RegistryClient();
    try {
      const [promoted] = await new ImagePromoter({ client: registryClient }).promote(
        parseImageReference(`${proxy!.host}/team/app:1.0.0`), [parseImageReference(`${proxy!.host}/staging/app:candidate`)]);
      expect(promoted!.digest).to.equal(appDigest);
      expect(promoted!.blobsMounted).to.be.greaterThan(0);
      expect(promoted!.blobsUploaded).to.equal(0);
      // What the registry itself answered:
      const mounts = proxy!.seen.filter((line) => /^POST \/v2\/staging\/app\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=team%2Fapp 201$/.test(line));
      expect(mounts).to.have.lengthOf(promoted!.blobsMounted);
      expect(proxy!.seen.filter((line) => /^(PATCH|PUT) \/v2\/staging\/app\/blobs\/uploads\//.test(line))).to.deep.equal([]);
      expect(proxy!.seen.filter((line) => /^GET \/v2\/team\/app\/blobs\//.test(line))).to.deep.equal([]);
      expect(await registryClient.manifestDigest(`${open!.host}/staging/app`, 'candidate')).to.equal(appDigest);
    } finally {
      await registryClient.close();
    }
  });

  it('copies a multi-manifest index, children first, in chunks, and a second run finds every blob there', async () => {
    const securedProxy = await startCountingProxy(secured!);
    const registryClient = client(securedProxy.host);
    try {
      const promoter = new ImagePromoter({ client: registryClient, chunkSize: 64 * 1024 });
      const source = parseImageReference(`${proxy!.host}/team/multi@${indexDigest}`);
      const [first] = await promoter.promote(source, [parseImageReference(`${securedProxy.host}/prod/multi:2.0.0`)]);
      // Seen by the destination registry: PATCH chunks accepted, manifests stored children first.
      expect(securedProxy.seen.filter((line) => /^PATCH \/v2\/prod\/multi\/blobs\/uploads\/\S+ 202$/.test(line)).length).to.be.greaterThan(2);
      const manifestPuts = securedProxy.seen.filter((line) => line.startsWith('PUT /v2/prod/multi/manifests/'));
      expect(manifestPuts).to.have.lengthOf(4);
      expect(manifestPuts.slice(2)).to.deep.equal([`PUT /v2/prod/multi/manifests/${indexDigest} 201`, 'PUT /v2/prod/multi/manifests/2.0.0 201']);
      expect(first).to.include({ digest: indexDigest, manifests: 3, blobsExisting: 0, blobsMounted: 0 });
      expect(first!.blobsUploaded).to.be.greaterThan(2);
      expect(await registryClient.manifestDigest(`${secured!.host}/prod/multi`, '2.0.0')).to.equal(indexDigest);
      const index = JSON.parse((await registryClient.getManifest(`${secured!.host}/prod/multi`, '2.0.0')).body.toString()) as { manifests: { digest: string }[] };
      expect(index.manifests).to.have.lengthOf(2);
      for (const child of index.manifests) {
        expect(await registryClient.manifestDigest(`${secured!.host}/prod/multi`, child.digest)).to.equal(child.digest);
      }
      const [second] = await promoter.promote(source, [parseImageReference(`${secured!.host}/prod/multi:2.0.0`)]);
      expect(second).to.include({ digest: indexDigest, blobsUploaded: 0, blobsMounted: 0, blobsExisting: first!.blobsUploaded });
    } finally {
      await registryClient.close();
      securedProxy.server.closeAllConnections();
      await new Promise((resolve) => securedProxy.server.close(resolve));
    }
  });

  it('names the registry and repository when a destination refuses the credentials', async () => {
    const wrong = join(dir, 'wrong.yaml');
    await writeFile(wrong, `${secured!.host}:\n  ".*":\n    security:\n      basic:\n        username: keelson\n        password: not-the-password\n`);
    const result = await runKeelson(['promote', `${open!.host}/team/app:1.0.0`, '--to', `${secured!.host}/prod/denied`, '--registry-config', wrong]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal(`keelson: registry ${secured!.host}, repository prod/denied: authentication failed (HTTP 401): the credentials for user "keelson" were refused\n`);
    expect(result.stderr).not.to.include('not-the-password');
  });

  it('says when a destination needs credentials and none are configured', async () => {
    const registryClient = new RegistryClient();
    try {
      const error = await new ImagePromoter({ client: registryClient })
        .promote(parseImageReference(`${open!.host}/team/app:1.0.0`), [parseImageReference(`${secured!.host}/prod/anon`)])
        .then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect((error as RegistryAuthError).registry).to.equal(secured!.host);
      expect((error as Error).message).to.match(/requires credentials and none are configured/);
    } finally {
      await registryClient.close();
    }
  });

  it('refuses a destination digest that is not the source\'s, before copying', async () => {
    const other = `sha256:${'0'.repeat(64)}`;
    const result = await runKeelson(['promote', `${open!.host}/team/app:1.0.0`, '--to', `${open!.host}/prod/x@${other}`]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.include(`the source is ${appDigest}; a destination may name no other digest`);
  });
});
