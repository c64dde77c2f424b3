import type { ImageReference, Manifest } from '../registry/index.js';

/** One manifest of the source, with the blobs it needs (none for an index). */
export interface ManifestNode {
  readonly manifest: Manifest;
  /** config and layers, foreign layers left out */
  readonly blobs: readonly { readonly digest: string; readonly size: number }[];
  /** an index's children, in the index's order */
  readonly children: readonly ManifestNode[];
}

/** What promotion did at one destination. */
export interface PromotedImage {
  /** `host/repo[:tag]@digest` */
  readonly reference: string;
  readonly destination: ImageReference;
  /** Equal to the source's, checked by HEAD after the push */
  readonly digest: string;
  readonly blobsExisting: number;
  readonly blobsMounted: number;
  readonly blobsUploaded: number;
  readonly bytesUploaded: number;
  readonly manifests: number;
}
