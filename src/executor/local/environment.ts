/**
 * The environments keelson gives the processes it starts. A step or a deploy run is the
 * repository's code: it sees a minimal base, the pipeline's `env:`, the run's KEELSON_* values
 * and only the variables the operator passes by name (`passEnv`) — never keelson's whole
 * environment, where the operator's tokens live. A builder tool (buildah, podman, docker) is
 * keelson's own: it also gets its own configuration variables, but not the pipeline's `env:`, so
 * a commit cannot point it at another storage, daemon or credentials file.
 */

/** What every child gets from keelson's environment, when set. */
export const BASE_ENV_NAMES: readonly string[] = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/** Configuration of the container tools (storage, isolation, daemon socket, registries). */
const TOOL_ENV = /^(?:BUILDAH_[A-Z_]+|STORAGE_DRIVER|STORAGE_OPTS|CONTAINERS_[A-Z_]+|REGISTRIES_CONFIG_PATH|XDG_RUNTIME_DIR|XDG_CONFIG_HOME|XDG_DATA_HOME|DOCKER_HOST|DOCKER_TLS_VERIFY|DOCKER_CERT_PATH|DOCKER_CONFIG|CONTAINER_HOST|CONTAINER_CONNECTION|USER)$/;

/** Where variables come from and which ones the operator passes on. */
export interface EnvironmentSource {
  /** keelson's own environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Names the operator's config passes through (`passEnv:`). @default [] */
  readonly passEnv?: readonly string[];
}

function pick(env: NodeJS.ProcessEnv, names: Iterable<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** A step's environment: base, passed-through names, the pipeline's env:, then the run's values (which win). */
export function stepEnvironment(source: EnvironmentSource, pipelineEnv: Readonly<Record<string, string>>,
  runValues: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env = source.env ?? process.env;
  return { ...pick(env, BASE_ENV_NAMES), ...pick(env, source.passEnv ?? []), ...pipelineEnv, ...runValues };
}

/** A container tool's environment: base, its own configuration variables and the passed-through names. */
export function toolEnvironment(source: EnvironmentSource): NodeJS.ProcessEnv {
  const env = source.env ?? process.env;
  return {
    ...pick(env, BASE_ENV_NAMES),
    ...pick(env, Object.keys(env).filter((name) => TOOL_ENV.test(name))),
    ...pick(env, source.passEnv ?? []),
  };
}
