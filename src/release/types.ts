/** A file to attach to a release, checked to exist before any request is made. */
export interface ReleaseAsset {
  readonly path: string;
  /** The asset's name on the release. @default the file's base name */
  readonly name: string;
  readonly size: number;
  readonly contentType: string;
}

export interface ReleaseRequest {
  /** `owner/name` */
  readonly repo: string;
  readonly tag: string;
  /** @default the tag */
  readonly name?: string;
  readonly notes?: string;
  /** What the tag points at when GitHub creates it. @default the repository's default branch */
  readonly commit?: string;
  readonly assets: readonly ReleaseAsset[];
}

export interface ReleaseOutcome {
  /** False when a release for the tag already existed: nothing was changed. */
  readonly created: boolean;
  readonly htmlUrl: string;
  readonly assets: readonly { readonly name: string; readonly url: string }[];
}

/** Creates a release once per tag. */
export interface ReleasePublisher {
  publish(request: ReleaseRequest, signal?: AbortSignal): Promise<ReleaseOutcome>;
}
