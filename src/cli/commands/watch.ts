import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { createHeadReader, GitWatcher, parseWatchSpec, type WatchSpec } from '../../git/index.js';
import { createLogger } from '../../log/index.js';
import { deployTags, LocalDeployLoop, type DeployPollResult } from '../../deploy/index.js';
import { RegistryClient, usesPlainHttp } from '../../registry/index.js';
import { createServer, recordRunFinished, type ListeningServer } from '../../server/index.js';
import { addPipelineOptions, parsePort, readConfigFile, setUpPipeline, type PipelineFlags } from '../pipeline-setup.js';
import { ExitStatus } from '../program.js';
import { Progress } from '../progress.js';
import { untilStopSignal } from '../signals.js';
import { configuredWatches, resolveWatches } from '../watches.js';

interface WatchFlags extends PipelineFlags {
  readonly schedule?: string;
  readonly once?: boolean;
  readonly ui?: string;
}

/**
 * `keelson watch REPO[^BRANCH]...`: polls each watch and runs the pipeline for every new commit.
 * With `--once` it checks every watch once, runs what is new, waits, and exits 0 when all runs
 * succeeded, 1 when one failed.
 */
export function registerWatchCommand(program: Command): void {
  const command = program
    .command('watch')
    .description('watch git repositories (remote URLs or local paths, REPO^BRANCH) and run the pipeline for each new commit')
    .argument('[repos...]', 'repositories to watch: URL or path, optionally ^branch (default: the remote HEAD)')
    .option('--schedule <schedule>', '"@every 30s" or a cron expression (default: @every 30s)')
    .option('--once', 'check every watch once, run what is new, wait and exit')
    .option('--ui <port>', 'serve the status page and JSON API on this port (127.0.0.1)');
  addPipelineOptions(command).action(async (repos: string[], flags: WatchFlags) => {
    const logger = createLogger();
    // The local loop: each watch with `deploy:` runs the images its builds push.
    const deployLoops = new Map<string, LocalDeployLoop>();
    const deploys: Array<Promise<DeployPollResult>> = [];
    let closeReader: () => Promise<void> = async () => {};
    // Everything the user gave is checked before the store is opened or anything runs.
    const file = await readConfigFile(flags);
    const specs: WatchSpec[] = repos.length > 0 ? repos.map((text) => parseWatchSpec(text)) : configuredWatches(file, flags.schedule);
    const uiPort = flags.ui === undefined ? undefined : parsePort(flags.ui, '--ui');
    if (uiPort !== undefined && flags.once) throw new UsageError('--ui serves the status page while watch keeps running; it cannot be used with --once');
    if (specs.length === 0) {
      throw new UsageError('watch: name at least one repository (e.g. keelson watch .^main) or list watches: in --config');
    }
    if (flags.once) {
      // A missing branch or a remote that does not exist is bad input: exit 2 before any run.
      await Promise.all(specs.map((spec) => createHeadReader(spec).readHead()));
    }
    // On a terminal the runs' output is shown as it comes, as `keelson run` shows it.
    const onTerminal = Boolean(process.stdout.isTTY);
    const progress = new Progress(logger);
    // The stage of each run going now (several with --workers): when a run ends its stage leaves
    // the progress line, which shows another run's or nothing while keelson waits for commits.
    const stages = new Map<string, string>();
    const setup = await setUpPipeline(flags, logger, {
      ...(onTerminal ? {
        echo: (text: string) => progress.write(text),
        onStage: (run: string, stage: string) => {
          stages.delete(run);
          stages.set(run, stage);
          progress.update(stage);
        },
      } : {}),
      onRunFinished: (run) => {
        // Counted here as the daemon counts them: --ui serves /metrics too.
        recordRunFinished(run);
        if (onTerminal) {
          stages.delete(run.id);
          const other = [...stages.values()].at(-1);
          if (other === undefined) progress.done();
          else progress.update(other);
          progress.write(`keelson: run ${run.id} ${run.phase}: ${run.message}\n`, process.stderr);
        }
        const loop = deployLoops.get(run.watch);
        if (loop) deploys.push(loop.recordBuild(run));
      },
    }, file);
    let ui: ListeningServer | undefined;
    try {
      let watcher: GitWatcher | undefined;
      // Bound before anything runs: a port that is taken must end the command, not leave a
      // watcher building without its page.
      if (uiPort !== undefined) {
        ui = await createServer({
          store: setup.store,
          logger,
          sources: { watches: { watches: () => watcher?.status() ?? [], checkNow: (key) => watcher?.pollOnce(key) } },
        }).listen(uiPort, '127.0.0.1');
        logger.info({ url: ui.url }, 'status page listening');
      }
      const watches = await resolveWatches(specs, setup.store, logger);
      if (setup.pipeline?.deploy && setup.registry) {
        const reader = new RegistryClient({ credentials: setup.credentials, logger });
        closeReader = () => reader.close();
        for (const spec of watches) {
          const branch = spec.branch ?? (await createHeadReader(spec).readHead()).branch;
          deployLoops.set(spec.key, new LocalDeployLoop({
            store: setup.store, registryReader: reader, pipeline: setup.pipeline, registry: setup.registry,
            tags: deployTags(setup.pipeline, branch), watchKey: spec.key,
            insecure: usesPlainHttp(setup.registry, setup.credentials),
            ...(setup.authFile ? { authFile: setup.authFile } : {}),
            passEnv: setup.passEnv,
            onRunFinished: recordRunFinished,
            logger,
          }));
        }
      }
      for (const run of await setup.runner.recoverInterruptedRuns()) {
        if (run.kind === 'deploy') await deployLoops.get(run.watch)?.removeInterruptedDeploy(run.id);
      }
      const triggered = new Set<string>();
      watcher = new GitWatcher({
        watches,
        trigger: {
          trigger: (event, signal) => {
            triggered.add(event.watch.key);
            return setup.runner.trigger(event, signal);
          },
          resume: (watchKey) => setup.runner.resume(watchKey),
        },
        state: setup.store,
        schedule: flags.schedule ?? setup.file?.schedule ?? '@every 30s',
        supersede: flags.supersede === true,
        history: setup.history,
        logger,
      });
      if (flags.once) {
        const ok = await watcher.runOnce();
        await watcher.stop();
        // Silence would look like a hang or a lost commit: say that the check found nothing.
        for (const watch of watcher.status()) {
          if (triggered.has(watch.key) || watch.failures > 0) continue;
          const last = watch.lastDone ? ` (last built ${watch.lastDone.slice(0, 7)})` : '';
          process.stderr.write(`keelson: ${watch.display}: nothing new${last}\n`);
        }
        const deployed = (await Promise.all(deploys)).flatMap((result) => result.runs);
        await Promise.all([...deployLoops.values()].map((loop) => loop.stop()));
        if (!ok || deployed.some((run) => run.phase !== 'succeeded')) throw new ExitStatus(1);
        return;
      }
      for (const loop of deployLoops.values()) loop.start();
      watcher.start();
      const signal = await untilStopSignal();
      logger.info({ signal }, 'stopping');
      await watcher.stop();
      await Promise.all([...deployLoops.values()].map((loop) => loop.stop()));
    } finally {
      progress.done();
      await ui?.close();
      await closeReader();
      await setup.dispose();
      await setup.store.close();
    }
  });
}
