/**
 * A forwarding proxy in front of a real registry (the toxiproxy idea), for the answers a
 * registry does not give on demand and for counting what a client sends. Every request is
 * recorded in `seen`; the next answers queued in `faults` replace the registry's; everything
 * else is forwarded unchanged (GET and HEAD, the headers the distribution API needs), with
 * Docker Hub's rate-limit headers added.
 */
import { createServer } from 'node:http';
import { request } from 'undici';

export interface ProxyFault {
  readonly status: number;
  readonly headers?: Record<string, string>;
}

export interface RegistryProxy {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly faults: ProxyFault[];
  /** `at`: epoch ms; `path`: the request's path and query */
  readonly seen: Array<{ readonly at: number; readonly method: string; readonly path: string }>;
  close(): Promise<void>;
}

export async function startRegistryProxy(target: string): Promise<RegistryProxy> {
  const faults: ProxyFault[] = [];
  const seen: Array<{ at: number; method: string; path: string }> = [];
  const server = createServer((req, res) => {
    seen.push({ at: Date.now(), method: req.method ?? '', path: req.url ?? '' });
    const fault = faults.shift();
    if (fault) {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
        .end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: `injected ${fault.status}` }] }));
      return;
    }
    void (async () => {
      const answer = await request(`${target}${req.url}`, {
        method: req.method as 'GET' | 'HEAD',
        headers: { accept: req.headers.accept ?? '*/*' },
      });
      const body = Buffer.from(await answer.body.arrayBuffer());
      const headers: Record<string, string> = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42' };
      for (const name of ['content-type', 'docker-content-digest', 'link', 'content-length']) {
        const value = answer.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      res.writeHead(answer.statusCode, headers).end(req.method === 'HEAD' ? undefined : body);
    })().catch((error: Error) => res.writeHead(502).end(error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return {
    host: `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    faults,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
