/** Promotion: copying an image by digest between repositories and registries (no docker). */
export { ImagePromoter, type ImagePromoterOptions } from './promoter.js';
export { PromoteError, UnsupportedManifestError } from './errors.js';
export type { ManifestNode, PromotedImage } from './types.js';
