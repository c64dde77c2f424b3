import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import { GitWatcher, parseWatchSpec, type WatchSpec } from '../../git/index.js';
import { createLogger, registerSecret } from '../../log/index.js';
import { RegistryClient } from '../../registry/index.js';
import { RegistryWatcher } from '../../registry-watch/index.js';
import { RegistryWatcherSource, RolloutController } from '../../rollout/index.js';
import { approvalBookSource, createServer, gitWatcherSources, recordRunFinished, registryWatcherSource, type ServerSources } from '../../server/index.js';
import { addPipelineOptions, parsePort, setUpPipeline, type PipelineFlags } from '../pipeline-setup.js';
import { collect } from '../program.js';
import { untilStopSignal } from '../signals.js';

interface DaemonFlags extends PipelineFlags {
  readonly port?: string;
  readonly host?: string;
  readonly namespace?: string[];
  readonly kubeconfig?: string;
  readonly rollouts: boolean;
  readonly tokenFile?: string;
  readonly githubSecretFile?: string;
  readonly schedule?: string;
}

/**
 * `keelson daemon`: with no config, Keel's job — the rollout controller over every namespace it
 * may see. With a config: the git watches and builds as well, in one process, behind an HTTP
 * server (health, metrics, webhooks, status page). SIGTERM stops it gracefully: no half-applied
 * patch, the run in progress is recorded as interrupted.
 */
export function registerDaemonCommand(program: Command): void {
  const command = program
    .command('daemon')
    .description('run the git watches, builds, registry watcher, rollouts and the HTTP server in one process')
    .option('--port <port>', 'HTTP port (default: 8080, or server.port in the config)')
    .option('--host <host>', 'HTTP bind address (default: 0.0.0.0)')
    .option('--namespace <ns>', 'watch workloads in this namespace only (repeatable; default: all)', collect)
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account)')
    .option('--no-rollouts', 'do not run the rollout controller (no cluster needed)')
    .option('--token-file <file>', 'bearer token that approve/reject and other changes through HTTP need')
    .option('--github-secret-file <file>', 'HMAC secret of GitHub push webhooks')
    .option('--schedule <schedule>', 'git poll schedule (default: @every 30s)');
  addPipelineOptions(command).action(async (flags: DaemonFlags) => {
    const logger = createLogger();
    const port = flags.port === undefined ? undefined : parsePort(flags.port, '--port');
    const setup = await setUpPipeline(flags, logger, { onRunFinished: recordRunFinished });
    const file = setup.file;
    const stops: Array<() => Promise<void>> = [];
    const stopAll = async (): Promise<void> => {
      for (const stop of stops.reverse()) await stop().catch((error: unknown) => logger.error({ err: String(error) }, 'error while stopping'));
    };
    try {
      const token = await readSecretFile(flags.tokenFile, '--token-file');
      const githubSecret = await readSecretFile(flags.githubSecretFile ?? file?.server?.githubSecretFile, '--github-secret-file');
      const specs: WatchSpec[] = (file?.watches ?? []).map((w) => parseWatchSpec(w.repo));

      const client = new RegistryClient({ credentials: setup.credentials, logger });
      const registryWatcher = new RegistryWatcher({ reader: client, store: setup.store, logger });
      stops.push(async () => { await registryWatcher.stop(); await client.close(); });

      const sources: { -readonly [K in keyof ServerSources]: ServerSources[K] } = {
        registry: registryWatcherSource(registryWatcher),
      };

      const rolloutsEnabled = flags.rollouts && (file?.rollouts?.enabled ?? true);
      if (rolloutsEnabled) {
        const kubeConfig = new KubeConfig();
        if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
        else kubeConfig.loadFromDefault();
        const controller = new RolloutController({
          kubeConfig,
          store: setup.store,
          source: new RegistryWatcherSource(registryWatcher, logger),
          logger,
          namespaces: flags.namespace ?? file?.rollouts?.namespaces ?? [],
          resolveDigest: (repository, tag) => client.manifestDigest(repository, tag),
        });
        await controller.start();
        stops.push(() => controller.stop());
        sources.workloads = { workloads: () => controller.workloads() };
        sources.approvals = approvalBookSource(controller.approvals);
      }
      registryWatcher.start();

      if (specs.length > 0) {
        await setup.runner.recoverInterruptedRuns();
        const gitWatcher = new GitWatcher({
          watches: specs, trigger: setup.runner, state: setup.store, logger,
          schedule: flags.schedule ?? file?.schedule ?? '@every 30s',
          supersede: flags.supersede === true,
        });
        gitWatcher.start();
        stops.push(() => gitWatcher.stop());
        Object.assign(sources, gitWatcherSources(gitWatcher));
      }

      const server = createServer({
        store: setup.store,
        logger,
        sources,
        auth: { ...(token ? { token } : {}), readOnlyPublic: true },
        ...(githubSecret ? { githubWebhookSecret: githubSecret } : {}),
      });
      const listening = await server.listen(port ?? file?.server?.port ?? 8080, flags.host ?? file?.server?.host ?? '0.0.0.0');
      stops.unshift(() => listening.close());
      logger.info({ url: listening.url, watches: specs.length, rollouts: rolloutsEnabled }, 'keelson daemon started');

      const signal = await untilStopSignal();
      logger.info({ signal }, 'stopping');
    } finally {
      await stopAll();
      await setup.dispose();
      await setup.store.close();
    }
  });
}

async function readSecretFile(file: string | undefined, flag: string): Promise<string | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new InputError(file, `${flag}: cannot read the file`, { cause: error });
  }
  if (text.length === 0) throw new InputError(file, `${flag}: the file is empty`);
  registerSecret(text);
  return text;
}
