/**
 * A real OCI registry for integration tests: Debian's `docker-registry` (CNCF distribution v2,
 * package `docker-registry`) started on 127.0.0.1:<free port> with its own config, storage and
 * (optionally) htpasswd file in a temp dir. Nothing here fakes the registry.
 *
 *   const registry = await startRegistry({ auth: true });
 *   // registry.host = '127.0.0.1:41234', registry.username / registry.password for basic auth
 *   after(() => registry.stop());   // kills the process, waits for it, removes the temp dir
 *
 * Needs: apt packages `docker-registry` and (for `auth: true`) `apache2-utils` (htpasswd -B).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, fetch } from 'undici';

const execFileAsync = promisify(execFile);

export const REGISTRY_BINARY = process.env.KEELSON_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export interface RunningRegistry {
  /** `127.0.0.1:PORT`, what goes in front of a repository in an image reference */
  readonly host: string;
  /** `http://127.0.0.1:PORT` (`https://` with `tls: true`) */
  readonly url: string;
  /** With `tls: true`: the self-signed certificate the registry serves (PEM) */
  readonly certificatePem?: string;
  /** Set when started with `auth: true` (htpasswd, bcrypt) */
  readonly username?: string;
  readonly password?: string;
  /** The registry's own config file, for tests that want to read it */
  readonly configPath: string;
  stop(): Promise<void>;
}

/** distribution's `token` auth: the registry trusts JWTs signed by a key in `rootCertBundle`. */
export interface RegistryTokenAuth {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM of the certificate whose key signs the tokens */
  readonly rootCertificatePem: string;
}

export interface StartRegistryOptions {
  /** Require basic auth (htpasswd with a random password). @default false */
  readonly auth?: boolean;
  /** Require bearer tokens from a token server instead (overrides `auth`). */
  readonly token?: RegistryTokenAuth;
  /** Serve HTTPS only, with a self-signed certificate for 127.0.0.1 made by openssl. @default false */
  readonly tls?: boolean;
  /** How long to wait for `GET /v2/` to answer. @default 15000 ms */
  readonly startTimeoutMs?: number;
}

/** A free loopback port: listen on 0, read the port, close. The registry binds it right after. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<RunningRegistry> {
  // Another process may grab the port between our probe and the registry's bind; retry then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof Error) || !/address already in use/i.test(error.message)) throw error;
    }
  }
}

async function startOnce(options: StartRegistryOptions): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'keelson-registry-'));
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const url = `${options.tls ? 'https' : 'http'}://${host}`;
    let tlsSection = '';
    let certificatePem: string | undefined;
    if (options.tls) {
      const certPath = join(dir, 'tls.crt');
      const keyPath = join(dir, 'tls.key');
      await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath]);
      certificatePem = await readFile(certPath, 'utf8');
      tlsSection = ['  tls:', `    certificate: ${JSON.stringify(certPath)}`, `    key: ${JSON.stringify(keyPath)}`].join('\n');
    }
    let username: string | undefined;
    let password: string | undefined;
    let authSection = '';
    if (options.token) {
      const certPath = join(dir, 'token-ca.pem');
      await writeFile(certPath, options.token.rootCertificatePem);
      authSection = [
        'auth:',
        '  token:',
        `    realm: ${JSON.stringify(options.token.realm)}`,
        `    service: ${JSON.stringify(options.token.service)}`,
        `    issuer: ${JSON.stringify(options.token.issuer)}`,
        `    rootcertbundle: ${JSON.stringify(certPath)}`,
      ].join('\n');
    } else if (options.auth) {
      username = 'keelson';
      password = randomBytes(12).toString('hex');
      const htpasswdPath = join(dir, 'htpasswd');
      // -B: bcrypt, the only hash distribution's htpasswd auth accepts
      const { stdout } = await execFileAsync('htpasswd', ['-Bbn', username, password]);
      await writeFile(htpasswdPath, stdout);
      authSection = ['auth:', '  htpasswd:', '    realm: keelson-test', `    path: ${JSON.stringify(htpasswdPath)}`].join('\n');
    }
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(join(dir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      // a fixed secret silences the "No HTTP secret provided" warning on every start
      `  secret: ${randomBytes(16).toString('hex')}`,
      tlsSection,
      authSection,
      '',
    ].join('\n'));

    const child = spawn(REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-8192); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise<number | null>((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.on('error', (error) => { output += `\n${error.message}`; resolve(-1); });
    });

    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await killAndWait(child, exited);
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitForRegistry(url, exited, () => output, options.startTimeoutMs ?? 15_000, certificatePem);
    } catch (error) {
      await stop();
      throw error;
    }
    return { host, url, username, password, configPath, stop, ...(certificatePem ? { certificatePem } : {}) };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function waitForRegistry(url: string, exited: Promise<number | null>, output: () => string, timeoutMs: number, ca?: string): Promise<void> {
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  try {
    await waitForAnswer(url, exited, output, timeoutMs, dispatcher);
  } finally {
    await dispatcher?.close();
  }
}

async function waitForAnswer(url: string, exited: Promise<number | null>, output: () => string, timeoutMs: number, dispatcher?: Agent): Promise<void> {
  let exitCode: number | null | undefined;
  void exited.then((code) => { exitCode = code === null ? -1 : code; });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(`docker-registry exited with status ${exitCode} before answering on ${url}: ${output().trim() || '(no output)'}`);
    }
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000), ...(dispatcher ? { dispatcher } : {}) });
      await response.body?.cancel();
      // 401 is the answer of a registry that wants credentials: it is up.
      if (response.status === 200 || response.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry did not answer GET ${url}/v2/ within ${timeoutMs} ms: ${output().trim() || '(no output)'}`);
}

async function killAndWait(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
