import { dnsLabel, type RunId } from '../../domain/index.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const RUN_LABEL = 'keelson.dev/run';
export const REPOSITORY_LABEL = 'keelson.dev/repository';
export const BRANCH_LABEL = 'keelson.dev/branch';
/** The Secret in each run namespace that holds the registry credentials for the builder. */
export const REGISTRY_SECRET = 'registry-auth';

const PREFIX = 'keelson-';

/**
 * The namespace of one run: `keelson-<repository>-<branch>-<run id>`, a DNS label of at most 63
 * characters. The run id (unique per run) is always kept whole at the end, so two runs never share
 * a namespace; the repository and branch part is cut (with a hash) to what is left, so a person
 * running `kubectl get ns` still sees what each one is.
 */
export function runNamespace(repository: string, branch: string, runId: RunId): string {
  const id = dnsLabel(runId, 40);
  const room = 63 - PREFIX.length - id.length - 1;
  const name = repositoryName(repository);
  if (room < 4) return dnsLabel(`${PREFIX}${id}`);
  return `${PREFIX}${dnsLabel(`${name}-${branch}`, room)}-${id}`;
}

/** Labels on everything a run creates; label values are cut to valid DNS labels. */
export function runLabels(repository: string, branch: string, runId: RunId): Record<string, string> {
  return {
    [MANAGED_BY]: 'keelson',
    [RUN_LABEL]: runId,
    [REPOSITORY_LABEL]: dnsLabel(repositoryName(repository)),
    [BRANCH_LABEL]: dnsLabel(branch),
  };
}

/** `https://host/org/app.git` → `app`; `/home/me/src/app/` → `app`. */
export function repositoryName(repository: string): string {
  const last = repository.replace(/[/\\]+$/, '').split(/[/\\:]/).pop() ?? '';
  return last.replace(/\.git$/, '') || 'repo';
}
