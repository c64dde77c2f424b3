import type { z } from 'zod';
import { UsageError } from '../errors.js';
import { silentLogger, type Logger } from '../log/index.js';
import { formatImageReference, type ImageReference, type Manifest, type RegistryClient } from '../registry/index.js';
import { PromoteError, UnsupportedManifestError } from './errors.js';
import { IMAGE_MEDIA_TYPES, INDEX_MEDIA_TYPES, ImageIndex, ImageManifest } from './schema.js';
import type { ManifestNode, PromotedImage } from './types.js';

export interface ImagePromoterOptions {
  /** Knows every registry's credentials (each destination's come from the registry config). */
  readonly client: RegistryClient;
  /** Blobs copied at once per destination. @default 3 */
  readonly concurrency?: number;
  /** Passed to the client's pushBlob. @default DEFAULT_CHUNK_SIZE */
  readonly chunkSize?: number;
  /** @default a silent logger */
  readonly logger?: Logger;
}

/** Nested indexes deeper than this are refused (a loop, or something we do not understand). */
const MAX_DEPTH = 3;

/**
 * Copies an image by digest between repositories and registries, without docker: the source's
 * manifest tree (an index, its child manifests, their config and layer blobs) is read once;
 * at each destination missing blobs are mounted (same registry) or streamed across, then
 * manifests go up children first with their exact bytes, so the digest at every destination
 * is the source's. It is checked with a HEAD at the end.
 */
export class ImagePromoter {
  private readonly client: RegistryClient;
  private readonly concurrency: number;
  private readonly chunkSize: number | undefined;
  private readonly logger: Logger;

  constructor(options: ImagePromoterOptions) {
    this.client = options.client;
    this.concurrency = options.concurrency ?? 3;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${this.concurrency}`);
    this.chunkSize = options.chunkSize;
    this.logger = options.logger ?? silentLogger();
  }

  /** Copies `source` to every destination in turn; resolves with what happened at each. */
  async promote(source: ImageReference, destinations: readonly ImageReference[], signal?: AbortSignal): Promise<PromotedImage[]> {
    if (destinations.length === 0) throw new UsageError('promote: at least one destination is needed');
    const reference = source.digest ?? source.tag ?? 'latest';
    const root = await this.resolve(source, reference, 0, signal);
    if (source.digest && root.manifest.digest !== source.digest) {
      throw new PromoteError(`${formatImageReference(source)}: the registry's manifest hashes to ${root.manifest.digest}`);
    }
    const results: PromotedImage[] = [];
    for (const destination of destinations) {
      results.push(await this.copyTo(source, root, destination, signal));
    }
    return results;
  }

  /** The manifest tree under `reference`, each manifest fetched by digest below the root. */
  async resolve(source: ImageReference, reference: string, depth: number, signal?: AbortSignal): Promise<ManifestNode> {
    const where = `${source.registry}/${source.repository}@${reference}`;
    const manifest = await this.client.getManifest(source, reference, signal ? { signal } : {});
    if (INDEX_MEDIA_TYPES.includes(manifest.mediaType)) {
      if (depth >= MAX_DEPTH) throw new UnsupportedManifestError(`${where}: indexes nested deeper than ${MAX_DEPTH} levels`);
      const index = parse(ImageIndex, manifest, where);
      const children: ManifestNode[] = [];
      for (const child of index.manifests) children.push(await this.resolve(source, child.digest, depth + 1, signal));
      return { manifest, blobs: [], children };
    }
    if (IMAGE_MEDIA_TYPES.includes(manifest.mediaType)) {
      const image = parse(ImageManifest, manifest, where);
      const blobs = [image.config, ...image.layers.filter((layer) => !layer.urls?.length)]
        .map(({ digest, size }) => ({ digest, size }));
      return { manifest, blobs, children: [] };
    }
    throw new UnsupportedManifestError(`${where}: cannot copy a manifest of type ${manifest.mediaType} ` +
      '(expected an OCI or Docker v2 image manifest or index; schema1 images must be rebuilt)');
  }

  private async copyTo(source: ImageReference, root: ManifestNode, destination: ImageReference, signal?: AbortSignal): Promise<PromotedImage> {
    const digest = root.manifest.digest;
    if (destination.digest && destination.digest !== digest) {
      throw new UsageError(`--to ${formatImageReference(destination)}: the source is ${digest}; a destination may name no other digest`);
    }
    const tag = destination.tag ?? (destination.digest ? undefined : source.tag);
    const log = this.logger.child({ destination: `${destination.registry}/${destination.repository}` });
    const sameRegistry = destination.registry === source.registry;
    const mountFrom = sameRegistry && destination.repository !== source.repository ? source.repository : undefined;
    const options = signal ? { signal } : {};

    const blobs = new Map<string, number>();
    const manifests: Manifest[] = [];
    const walk = (node: ManifestNode) => {
      node.children.forEach(walk);
      for (const blob of node.blobs) blobs.set(blob.digest, blob.size);
      manifests.push(node.manifest);   // children before their index
    };
    walk(root);

    let existing = 0;
    let mounted = 0;
    let uploaded = 0;
    let bytes = 0;
    const queue = [...blobs];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [blob, size] = next;
        if (await this.client.blobExists(destination, blob, options)) {
          existing++;
          continue;
        }
        const result = await this.client.pushBlob(destination, blob, size,
          async () => (await this.client.getBlob(source, blob, options)).stream,
          { ...options, ...(mountFrom ? { mountFrom } : {}), ...(this.chunkSize ? { chunkSize: this.chunkSize } : {}) });
        if (result === 'mounted') {
          mounted++;
        } else {
          uploaded++;
          bytes += size;
        }
        log.debug({ blob, size, result }, 'blob copied');
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));

    for (const manifest of manifests) await this.client.putManifest(destination, manifest.digest, manifest, options);
    if (tag) await this.client.putManifest(destination, tag, root.manifest, options);

    const seen = await this.client.manifestDigest(destination, tag ?? digest, options);
    const reference = `${destination.registry}/${destination.repository}${tag ? `:${tag}` : ''}@${digest}`;
    if (seen !== digest) {
      throw new PromoteError(`${destination.registry}/${destination.repository}${tag ? `:${tag}` : ''}: the registry reports digest ${seen} after the copy, the source is ${digest}`);
    }
    log.info({ digest, tag, existing, mounted, uploaded, bytes, manifests: manifests.length }, 'image promoted');
    return {
      reference, destination, digest, blobsExisting: existing, blobsMounted: mounted, blobsUploaded: uploaded,
      bytesUploaded: bytes, manifests: manifests.length,
    };
  }
}

function parse<T>(schema: z.ZodType<T>, manifest: Manifest, where: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(manifest.body.toString('utf8'));
  } catch (error) {
    throw new PromoteError(`${where}: the manifest is not JSON`, { cause: error });
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new PromoteError(`${where}: malformed ${manifest.mediaType}: ${issue ? `${issue.path.join('.') || '(top level)'}: ${issue.message}` : 'unexpected shape'}`);
}
