/**
 * Real images for integration tests, built and pushed with buildah (no docker engine needed).
 *
 *   const digest = await pushImage(registry, 'team/app', '1.0.0', { content: 'one' });
 *
 * Each image is `FROM scratch` + Debian's static busybox + a `RUN` step that writes `content` to
 * /content, so a RUN really executes. Builds are reproducible (`--timestamp 0` clamps created
 * times and file mtimes), so the same content always gives the same digest, in any process.
 *
 * How buildah runs here (as root, no daemon, no overlay, no user namespaces):
 * - `--storage-driver vfs --root D/root --runroot D/runroot`: a private store in a temp dir shared
 *   by the whole test process and removed at exit; vfs needs no kernel overlay support.
 * - `--isolation chroot` (also `BUILDAH_ISOLATION=chroot`): RUN without runc/crun or namespaces
 *   that a container or CI runner may not allow.
 * - `CONTAINERS_REGISTRIES_CONF`, `CONTAINERS_STORAGE_CONF` and `--signature-policy` point at files
 *   in the temp dir, so the host's /etc/containers (or its absence) does not matter.
 * - `TMPDIR` in the temp dir: buildah stages blobs under /var/tmp by default.
 * - `buildah push --tls-verify=false` lets it push over plain HTTP to 127.0.0.1.
 *
 * Needs: apt packages `buildah` and `busybox-static` (/bin/busybox, statically linked).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningRegistry } from './registry.js';

export const BUILDAH_BINARY = process.env.KEELSON_TEST_BUILDAH_BIN ?? '/usr/bin/buildah';
/** Debian busybox-static; the dynamically linked /bin/busybox of package `busybox` would not run in scratch. */
export const BUSYBOX_BINARY = process.env.KEELSON_TEST_BUSYBOX_BIN ?? '/bin/busybox';

/** True when buildah and a busybox binary are present (a test can fail with a clear message). */
export function buildahAvailable(): boolean {
  try {
    accessSync(BUILDAH_BINARY, constants.X_OK);
    accessSync(BUSYBOX_BINARY, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface BuildahState {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly globalArgs: readonly string[];
  readonly policyPath: string;
}

let state: BuildahState | undefined;

function buildahState(): BuildahState {
  if (state) return state;
  if (!buildahAvailable()) {
    throw new Error(`buildah images need ${BUILDAH_BINARY} (apt install buildah) and a static ${BUSYBOX_BINARY} (apt install busybox-static)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'keelson-buildah-'));
  // Removed when the test process ends, whatever the outcome.
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const registriesConf = join(dir, 'registries.conf');
  writeFileSync(registriesConf, 'unqualified-search-registries = []\n');
  const storageConf = join(dir, 'storage.conf');
  writeFileSync(storageConf, `[storage]\ndriver = "vfs"\nrunroot = "${join(dir, 'runroot')}"\ngraphroot = "${join(dir, 'root')}"\n`);
  const policyPath = join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BUILDAH_ISOLATION: 'chroot',
    STORAGE_DRIVER: 'vfs',
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    TMPDIR: tmp,
  };
  const globalArgs = ['--storage-driver', 'vfs', '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot')];
  state = { dir, env, globalArgs, policyPath };
  return state;
}

/** The env and leading arguments for running buildah against the shared test store yourself. */
export function buildahInvocation(): { env: NodeJS.ProcessEnv; globalArgs: readonly string[]; policyPath: string } {
  const { env, globalArgs, policyPath } = buildahState();
  return { env, globalArgs, policyPath };
}

let baseDir: string | undefined;

/**
 * A build context: `busybox` (static) and a `Containerfile` (`FROM scratch`, busybox at
 * /bin/busybox, /bin/sh linked to it). Copy it into a test repository to give it something
 * buildah or kaniko can build without pulling a base image from the internet.
 */
export function baseImageDir(): string {
  if (baseDir) return baseDir;
  const dir = join(buildahState().dir, 'base-context');
  mkdirSync(dir, { recursive: true });
  copyFileSync(BUSYBOX_BINARY, join(dir, 'busybox'));
  writeFileSync(join(dir, 'Containerfile'), [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "ln", "-s", "/bin/busybox", "/bin/sh"]',
    '',
  ].join('\n'));
  baseDir = dir;
  return dir;
}

function run(args: readonly string[], what: string): Promise<string> {
  const { env } = buildahState();
  return new Promise((resolve, reject) => {
    execFile(BUILDAH_BINARY, args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`buildah ${what} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** content → local image name, so pushing the same content again does not rebuild. */
const built = new Map<string, Promise<string>>();

async function buildImage(content: string): Promise<string> {
  const { dir, globalArgs, policyPath } = buildahState();
  const id = randomBytes(6).toString('hex');
  const context = join(dir, `ctx-${id}`);
  mkdirSync(context);
  copyFileSync(BUSYBOX_BINARY, join(context, 'busybox'));
  // Exec form: the content reaches sh as $0, so no quoting of it is needed.
  writeFileSync(join(context, 'Containerfile'), [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    `RUN ${JSON.stringify(['/bin/busybox', 'sh', '-c', 'printf %s "$0" > /content', content])}`,
    '',
  ].join('\n'));
  const name = `localhost/keelson-test-${id}:latest`;
  try {
    await run([...globalArgs, 'bud', '--quiet', '--isolation', 'chroot', '--signature-policy', policyPath,
      '--timestamp', '0', '-t', name, '-f', join(context, 'Containerfile'), context], 'bud');
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return name;
}

export interface PushImageOptions {
  /** Written to /content in the image; same content, same digest. @default random */
  readonly content?: string;
}

/**
 * Builds (or reuses) an image and pushes it as `<registry.host>/<repository>:<tag>`, with the
 * registry's credentials when it has them. Resolves to the manifest digest buildah pushed.
 */
export async function pushImage(registry: Pick<RunningRegistry, 'host' | 'username' | 'password'>, repository: string,
  tag: string, options: PushImageOptions = {}): Promise<string> {
  const { dir, globalArgs, policyPath } = buildahState();
  const content = options.content ?? randomBytes(8).toString('hex');
  let image = built.get(content);
  if (!image) {
    image = buildImage(content);
    built.set(content, image);
    image.catch(() => built.delete(content));
  }
  const name = await image;
  const digestFile = join(dir, `digest-${randomBytes(6).toString('hex')}`);
  const creds = registry.username ? ['--creds', `${registry.username}:${registry.password ?? ''}`] : [];
  try {
    await run([...globalArgs, 'push', '--quiet', '--signature-policy', policyPath, '--tls-verify=false', ...creds,
      '--digestfile', digestFile, name, `docker://${registry.host}/${repository}:${tag}`], 'push');
    return readFileSync(digestFile, 'utf8').trim();
  } finally {
    rmSync(digestFile, { force: true });
  }
}
