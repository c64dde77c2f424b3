import { z } from 'zod';

/** The parts of GitHub's release object we read (tolerant: other fields are ignored). */
export const GitHubReleaseJson = z.object({
  id: z.number(),
  html_url: z.string(),
  upload_url: z.string(),
  tag_name: z.string(),
});
export type GitHubReleaseJson = z.infer<typeof GitHubReleaseJson>;

export const GitHubAssetJson = z.object({
  name: z.string(),
  browser_download_url: z.string(),
});
