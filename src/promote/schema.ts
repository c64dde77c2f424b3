import { z } from 'zod';

/** A descriptor: what an index or manifest points at. Only the fields we read. */
const Descriptor = z.object({
  mediaType: z.string().optional(),
  digest: z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, 'expected ALGORITHM:HEX'),
  size: z.number().int().nonnegative(),
  /** Foreign (non-distributable) layers live elsewhere and are not copied */
  urls: z.array(z.string()).optional(),
});
export type Descriptor = z.infer<typeof Descriptor>;

/** OCI image index / Docker manifest list. */
export const ImageIndex = z.object({
  manifests: z.array(Descriptor),
});

/** OCI image manifest / Docker image manifest v2 schema 2. */
export const ImageManifest = z.object({
  config: Descriptor,
  layers: z.array(Descriptor),
});

export const INDEX_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
export const IMAGE_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
