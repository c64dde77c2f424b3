import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './registry.js';

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>`, with `:password@` when started with one */
  readonly url: string;
  readonly port: number;
  readonly password?: string;
  /** Kills the server, waits for it to exit and removes its temp dir. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Sets requirepass, to check that the password never shows. */
  readonly password?: string;
}

/** A real redis-server (Debian package redis-server) on 127.0.0.1, a free port, a temp dir. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RunningRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'keelson-redis-'));
  let lastError: unknown;
  // A free port can be taken between asking and binding; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
    if (options.password) args.push('--requirepass', options.password);
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
    child.stderr!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitForPing(port, options.password, child, () => output);
      const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
      return {
        url: `redis://${auth}127.0.0.1:${port}`,
        port,
        ...(options.password ? { password: options.password } : {}),
        async stop() {
          await stopChild(child, exited);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      lastError = error;
      await stopChild(child, exited);
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Polls with a raw PING (and AUTH) until the server answers +PONG. */
async function waitForPing(port: number, password: string | undefined, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${output()}`);
    if (await pingOnce(port, password)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING: ${output()}`);
}

function pingOnce(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('+PONG')) finish(true);
      else if (reply.includes('-')) finish(false);
    });
    socket.connect(port, '127.0.0.1', () => {
      const auth = password ? `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n` : '';
      socket.write(`${auth}PING\r\n`);
    });
  });
}
