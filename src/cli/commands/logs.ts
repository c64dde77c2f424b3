import type { Command } from 'commander';
import { parseRunId, type RunId } from '../../domain/index.js';
import { InputError } from '../../errors.js';
import { followLog, type Store } from '../../store/index.js';
import { addStoreOptions, readStoreFromOptions, type StoreFlags } from '../store-options.js';
import { listRunsOfWatch } from './runs.js';

interface LogsFlags extends StoreFlags {
  readonly follow?: boolean;
  readonly watch?: string;
}

// Every run, so that a prefix is matched against all of them and never against the newest 100.
const ALL_RUNS = 1_000_000;

/** `keelson logs RUN|PREFIX|latest [-f]`: a run's log; with -f, new text as it comes until the run ends. */
export function registerLogsCommand(program: Command): void {
  addStoreOptions(program
    .command('logs')
    .description('print the log of a run')
    .argument('<run>', 'run id as `keelson runs` shows it, a unique prefix of one, or latest')
    .option('-f, --follow', 'keep printing new output until the run has finished')
    .option('--watch <watch>', 'with latest (or a prefix): only runs of this watch, spelled any way'))
    .action(async (runText: string, flags: LogsFlags) => {
      await readStoreFromOptions(flags, async (store) => {
        const id = await findRun(store, runText, flags.watch);
        if (!flags.follow) {
          const { text } = await store.readLog(id);
          return writeStdout(text);
        }
        for await (const chunk of followLog(store, id)) await writeStdout(chunk);
      }, () => {
        throw new InputError(`run "${runText}" not found`, 'nothing is recorded yet');
      });
    });
}

/** Waits until stdout took the text, so that following a long log keeps memory flat. */
function writeStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/** The run `text` names: an exact id, `latest`, or a prefix that only one run id starts with. */
async function findRun(store: Store, text: string, watch: string | undefined): Promise<RunId> {
  const where = watch === undefined ? store.description : `${store.description} for watch ${watch}`;
  if (watch === undefined && text !== 'latest') {
    let id: RunId | undefined;
    try {
      id = parseRunId(text);
    } catch {
      id = undefined;
    }
    if (id !== undefined && (await store.getRun(id)) !== undefined) return id;
  }
  if (text === 'latest') {
    const [newest] = await listRunsOfWatch(store, watch, 1);
    if (!newest) throw new InputError(`no runs recorded in ${where}`, 'nothing to show for "latest"');
    return newest.id;
  }
  const matches = (await listRunsOfWatch(store, watch, ALL_RUNS)).filter((run) => run.id.startsWith(text));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new InputError(`run "${text}" not found in ${where}`, 'list runs with `keelson runs`');
  const shown = matches.slice(0, 10).map((run) => run.id).join(', ');
  throw new InputError(`run "${text}" matches ${matches.length} runs`, `${shown}${matches.length > 10 ? ', …' : ''}; give more of the id`);
}
