import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { createHeadReader, GitWatcher, parseWatchSpec, type WatchSpec } from '../../git/index.js';
import { createLogger } from '../../log/index.js';
import { createServer } from '../../server/index.js';
import { addPipelineOptions, parsePort, setUpPipeline, type PipelineFlags } from '../pipeline-setup.js';
import { ExitStatus } from '../program.js';
import { untilStopSignal } from '../signals.js';

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
    const setup = await setUpPipeline(flags, logger);
    try {
      const specs: WatchSpec[] = [];
      const fromFile = setup.file?.watches ?? [];
      for (const text of repos.length > 0 ? repos : fromFile.map((w) => w.repo)) specs.push(parseWatchSpec(text));
      if (specs.length === 0) {
        throw new UsageError('watch: name at least one repository (e.g. keelson watch .^main) or list watches: in --config');
      }
      if (flags.once) {
        // Bad input (a missing branch, a remote that does not exist) is reported before anything runs.
        await Promise.all(specs.map((spec) => createHeadReader(spec).readHead()));
      }
      await setup.runner.recoverInterruptedRuns();
      const watcher = new GitWatcher({
        watches: specs,
        trigger: setup.runner,
        state: setup.store,
        schedule: flags.schedule ?? setup.file?.schedule ?? '@every 30s',
        supersede: flags.supersede === true,
        logger,
      });
      if (flags.once) {
        const ok = await watcher.runOnce();
        await watcher.stop();
        if (!ok) throw new ExitStatus(1);
        return;
      }
      watcher.start();
      const ui = flags.ui === undefined ? undefined : await createServer({
        store: setup.store,
        logger,
        sources: { watches: { watches: () => watcher.status(), checkNow: (key) => watcher.pollOnce(key) } },
      }).listen(parsePort(flags.ui, '--ui'), '127.0.0.1');
      if (ui) logger.info({ url: ui.url }, 'status page listening');
      const signal = await untilStopSignal();
      logger.info({ signal }, 'stopping');
      await ui?.close();
      await watcher.stop();
    } finally {
      await setup.dispose();
      await setup.store.close();
    }
  });
}
