import type { Command } from 'commander';
import { createHeadReader, parseWatchSpec } from '../../git/index.js';
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
  addPipelineOptions(command).action(async (target: string, flags: PipelineFlags) => {
    const logger = createLogger();
    const given = parseWatchSpec(target);
    const head = await createHeadReader(given).readHead();
    // Record the run under the branch that was checked out, not under "HEAD".
    const spec = given.branch ? given : parseWatchSpec(`${target}^${head.branch}`);
    const progress = new Progress(logger);
    const setup = await setUpPipeline(flags, logger, {
      echo: (text) => {
        progress.clear();
        process.stdout.write(text);
      },
      onStage: (_run, stage) => progress.update(stage),
    });
    const stop = abortOnStopSignal();
    try {
      const outcome = await setup.runner.trigger({ watch: spec, branch: head.branch, commit: head.commit, skipped: [] }, stop.signal);
      const run = outcome.runId ? await setup.store.getRun(outcome.runId) : undefined;
      if (run) {
        process.stderr.write(`keelson: run ${run.id} ${run.phase}: ${run.message}\n`);
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
