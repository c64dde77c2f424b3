import type { RunLogSink } from '../executor/index.js';
import type { RunProcess } from '../store/index.js';

/** The container tool that runs a deploy image: the build's `build.tool`. */
export type DeployTool = 'buildah' | 'podman' | 'docker';

export interface RunImageOptions {
  /** @default 'buildah' */
  readonly tool?: DeployTool;
  /** `host/path@sha256:...` (pulled once, content-addressed) or `host/path:tag` (always pulled). */
  readonly image: string;
  /** argv inside the container, e.g. `['/ci.sh']`; no shell unless the command names one. */
  readonly command: readonly string[];
  /** Names the working container so it can be removed whatever happens; e.g. `keelson-deploy-<run id>`. */
  readonly name: string;
  /** Plain HTTP / unverified TLS to the image's registry (buildah and podman). @default false */
  readonly insecure?: boolean;
  /** A docker config.json with credentials: passed as a file, never on a command line. */
  readonly authFile?: string;
  /** Set inside the container (not secret: the pipeline's env:, run id, commit, image). */
  readonly containerEnv?: Readonly<Record<string, string>>;
  /**
   * The tool's own environment: storage config, `BUILDAH_ISOLATION=chroot` where namespaces are
   * not allowed, `TMPDIR`. @default toolEnvironment() of process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  readonly log: RunLogSink;
  /** Aborting kills the running command; the container is still removed. */
  readonly signal: AbortSignal;
  /** Records each child process group with the deploy run before the child runs. */
  readonly recordProcess?: (process: RunProcess) => Promise<void>;
}

/** How running an image went; `stage` says which command failed. */
export type RunImageResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly stage: 'pull' | 'run'; readonly exitCode: number | null; readonly aborted: boolean };

/** One command of a plan: `cleanup` commands run even after a failure or an abort. */
export interface PlannedCommand {
  readonly stage: 'pull' | 'run' | 'cleanup';
  readonly args: readonly string[];
}
