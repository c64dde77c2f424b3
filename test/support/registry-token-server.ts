/**
 * A token server for docker-registry's `token` auth (distribution docs, "Token Authentication
 * Specification" and "Token Authentication Implementation"): GET /token?service=&scope= with
 * optional basic credentials answers `{ token, expires_in }`, a JWT signed with RS256 by a key
 * whose self-signed certificate the registry trusts (`rootcertbundle`), the certificate sent in
 * the `x5c` header. Authenticated users get every action they ask for; anonymous users get none,
 * so the registry answers them 401 insufficient_scope.
 *
 *   const tokens = await startTokenServer({ username: 'bot', password: 'pw' });
 *   const registry = await startRegistry({ token: tokens.registryAuth });
 *
 * Needs the `openssl` binary (Debian package openssl) to make the key and certificate.
 */
import { execFile } from 'node:child_process';
import { randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RegistryTokenAuth } from './registry.js';

const execFileAsync = promisify(execFile);

export interface TokenServerOptions {
  readonly username: string;
  readonly password: string;
  /** `expires_in` of every token, seconds. @default 300 */
  readonly expiresIn?: number;
}

export interface RunningTokenServer {
  /** What startRegistry needs to trust this server */
  readonly registryAuth: RegistryTokenAuth;
  /** Every token request served, in order (scope list and user, or '' for anonymous) */
  readonly requests: readonly { readonly scopes: readonly string[]; readonly user: string }[];
  stop(): Promise<void>;
}

const SERVICE = 'keelson-test-registry';
const ISSUER = 'keelson-test-token-server';

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(options: TokenServerOptions): Promise<RunningTokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'keelson-token-'));
  try {
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${ISSUER}`,
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const keyPem = await readFile(join(dir, 'key.pem'), 'utf8');
    const certPem = await readFile(join(dir, 'cert.pem'), 'utf8');
    const certDer = new X509Certificate(certPem).raw;
    const requests: { scopes: string[]; user: string }[] = [];

    const issue = (user: string, scopes: readonly string[]): string => {
      const now = Math.floor(Date.now() / 1000);
      const access = user ? scopes.map((scope) => {
        // repository:team/app:pull,push — the name itself may not contain ':' (no port in names)
        const [type, name, actions] = scope.split(':');
        return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
      }) : [];
      const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
      const claims = { iss: ISSUER, sub: user, aud: SERVICE, exp: now + (options.expiresIn ?? 300), nbf: now - 10, iat: now,
        jti: randomBytes(8).toString('hex'), access };
      const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
      return `${input}.${base64url(sign('sha256', Buffer.from(input), keyPem))}`;
    };

    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/token') {
        res.writeHead(404).end();
        return;
      }
      let user = '';
      const authorization = req.headers.authorization;
      if (authorization?.startsWith('Basic ')) {
        const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
        if (decoded !== `${options.username}:${options.password}`) {
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'wrong credentials' }));
          return;
        }
        user = options.username;
      }
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      requests.push({ scopes, user });
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: issue(user, scopes), expires_in: options.expiresIn ?? 300, issued_at: new Date().toISOString() }));
    };

    const server = createServer(handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return {
      registryAuth: { realm: `http://127.0.0.1:${port}/token`, service: SERVICE, issuer: ISSUER, rootCertificatePem: certPem },
      requests,
      async stop() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
