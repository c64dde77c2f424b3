/**
 * Adds one layer to an image in a plain-HTTP registry through the registry API, without pulling
 * the base: the base's layers are mounted into the target repository, the new layer and config
 * are uploaded, and a manifest pointing at both is put under the target tag.
 *
 *   const digest = await addLayer('127.0.0.1:5000', 'base/node:20', 'team/app:ci', stagingDir);
 *
 * Used to put the keelson of this checkout (`npm pack`) on top of a cached image with its
 * dependencies (test/cluster/ensure-images.sh deps), so a code change needs no image rebuild.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const execFileAsync = promisify(execFile);

const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const LAYER_TYPE: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.distribution.manifest.v2+json': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

interface Descriptor { mediaType: string; digest: string; size: number }
interface Manifest { schemaVersion: number; mediaType?: string; config: Descriptor; layers: Descriptor[] }
interface ImageConfig { rootfs: { type: string; diff_ids: string[] }; history?: Array<Record<string, unknown>>; [key: string]: unknown }

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function split(reference: string): { repository: string; tag: string } {
  const at = reference.lastIndexOf(':');
  return { repository: reference.slice(0, at), tag: reference.slice(at + 1) };
}

async function ok(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

async function upload(registry: string, repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await ok(await fetch(`http://${registry}/v2/${repository}/blobs/uploads/`, { method: 'POST' }), `upload to ${repository}`);
  const location = new URL(start.headers.get('location')!, `http://${registry}`);
  location.searchParams.set('digest', digest);
  await ok(await fetch(location, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } }), `upload ${digest}`);
  return digest;
}

/** `dir`'s tree (owned by root) as a new top layer of `base`, tagged `target`; resolves to the new manifest digest. */
export async function addLayer(registry: string, base: string, target: string, dir: string): Promise<string> {
  const from = split(base);
  const to = split(target);
  const manifestResponse = await ok(await fetch(`http://${registry}/v2/${from.repository}/manifests/${from.tag}`, {
    headers: { accept: MANIFEST_TYPES.join(', ') },
  }), `manifest of ${base}`);
  const mediaType = manifestResponse.headers.get('content-type')?.split(';')[0] ?? '';
  if (!LAYER_TYPE[mediaType]) throw new Error(`${base}: unexpected manifest type ${mediaType}`);
  const manifest = await manifestResponse.json() as Manifest;
  const config = await (await ok(await fetch(`http://${registry}/v2/${from.repository}/blobs/${manifest.config.digest}`), `config of ${base}`)).json() as ImageConfig;

  for (const layer of manifest.layers) {
    const mount = `http://${registry}/v2/${to.repository}/blobs/uploads/?mount=${layer.digest}&from=${from.repository}`;
    await ok(await fetch(mount, { method: 'POST' }), `mount ${layer.digest}`);
  }
  const { stdout: tar } = await execFileAsync('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], {
    encoding: 'buffer', maxBuffer: 1 << 30,
  });
  const layer = gzipSync(tar);
  const layerDigest = await upload(registry, to.repository, layer);
  const newConfig = Buffer.from(JSON.stringify({
    ...config,
    rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids, sha256(tar)] },
    history: [...(config.history ?? []), { created: new Date().toISOString(), created_by: `addLayer ${dir}` }],
  }));
  const configDigest = await upload(registry, to.repository, newConfig);
  const body = Buffer.from(JSON.stringify({
    ...manifest,
    config: { ...manifest.config, digest: configDigest, size: newConfig.length },
    layers: [...manifest.layers, { mediaType: LAYER_TYPE[mediaType], digest: layerDigest, size: layer.length }],
  }));
  await ok(await fetch(`http://${registry}/v2/${to.repository}/manifests/${to.tag}`, {
    method: 'PUT', body, headers: { 'content-type': mediaType },
  }), `manifest ${target}`);
  return sha256(body);
}
