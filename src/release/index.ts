/** Publishing releases: a GitHub release per tag, created once, with its assets. */
export { GitHubReleases, type GitHubReleasesOptions } from './github-release.js';
export { readAssets, contentTypeFor } from './assets.js';
export { ReleaseError } from './errors.js';
export type { ReleaseAsset, ReleaseRequest, ReleaseOutcome, ReleasePublisher } from './types.js';
