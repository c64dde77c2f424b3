/**
 * What the benchmarks share: copying an image to many repositories by blob mounts, and reading a
 * process's CPU per thread from /proc.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { RegistryClient } from '../src/registry/index.js';

/** Runs `work` on every item, `limit` at a time. */
export async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** Copies `from`'s manifest to every repository in `to` under `tag`, blobs mounted, not uploaded. Resolves to when each was done. */
export async function copyImage(client: RegistryClient, host: string, from: string, to: readonly string[], tag: string): Promise<Map<string, number>> {
  const manifest = await client.getManifest(`${host}/${from}`, tag);
  const parsed = JSON.parse(manifest.body.toString()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  const done = new Map<string, number>();
  await pool(to, 8, async (repo) => {
    for (const blob of [parsed.config, ...parsed.layers]) {
      await client.pushBlob(`${host}/${repo}`, blob.digest, blob.size, () => { throw new Error(`blob ${blob.digest} was not mounted`); }, { mountFrom: from });
    }
    await client.putManifest(`${host}/${repo}`, tag, manifest);
    done.set(repo, Date.now());
  });
  return done;
}

/** CPU seconds of a process's main thread (JavaScript) and of its other threads together (V8's GC workers, libuv's pool), from /proc. */
export async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
    const name = task === String(pid) ? 'main thread' : 'other threads';
    if (Number.isFinite(seconds)) out.set(name, (out.get(name) ?? 0) + seconds);
  }
  return out;
}
