import type { Command } from 'commander';
import { createHeadReader, parseWatchSpec, resolveWatch, watchStateKey, type WatchState } from '../../git/index.js';
import { createLogger } from '../../log/index.js';
import { addPipelineOptions, setUpPipeline, type PipelineFlags } from '../pipeline-setup.js';
import { ExitStatus } from '../program.js';
import { Progress } from '../progress.js';
import { abortOnStopSignal } from '../signals.js';

/**
 * `keelson run [PATH]`: one run of a checkout's committed HEAD (never its dirty work tree), with
 * the run's output on stdout. Exit 0 when the run succeeded, 1 when it failed.
 */
export function registerRunCommand(program: Command): void {
  const command = program
    .command('run')
    .description("build the committed HEAD of a checkout once (uncommitted changes are not used)")
    .argument('[path]', 'a local repository, optionally PATH^BRANCH', '.');
  addPipelineOptions(command, { oneRun: true }).action(async (target: string, flags: PipelineFlags) => {
    const logger = createLogger();
    const given = parseWatchSpec(target);
    const head = await createHeadReader(given).readHead();
    // Recorded under the same key as `keelson watch` of this repository and branch.
    const { spec } = await resolveWatch(given);
    const progress = new Progress(logger);
    const setup = await setUpPipeline(flags, logger, {
      echo: (text) => progress.write(text),
      onStage: (_run, stage) => progress.update(stage),
    });
    const stop = abortOnStopSignal();
    try {
      const outcome = await setup.runner.trigger({ watch: spec, branch: head.branch, commit: head.commit, skipped: [] }, stop.signal);
      if (!stop.signal.aborted) {
        // The commit is done for the watch of this branch too: `keelson watch` does not build it again.
        const done: WatchState = { commit: head.commit, branch: head.branch, ok: outcome.ok, at: new Date().toISOString() };
        await setup.store.setState(watchStateKey(spec), done);
      }
      const run = outcome.runId ? await setup.store.getRun(outcome.runId) : undefined;
      if (run) {
        progress.write(`keelson: run ${run.id} ${run.phase}: ${run.message}\n`, process.stderr);
      }
      if (!outcome.ok) throw new ExitStatus(1);
    } finally {
      progress.done();
      stop.dispose();
      await setup.dispose();
      await setup.store.close();
    }
  });
}
