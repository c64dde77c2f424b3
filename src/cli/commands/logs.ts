import type { Command } from 'commander';
import { parseRunId, type RunId } from '../../domain/index.js';
import { InputError } from '../../errors.js';
import { followLog, type Store } from '../../store/index.js';
import { addStoreOptions, withStoreFromOptions, type StoreFlags } from '../store-options.js';

interface LogsFlags extends StoreFlags {
  readonly follow?: boolean;
}

/** `keelson logs RUN [-f]`: a run's log; with -f, new text as it comes until the run ends. */
export function registerLogsCommand(program: Command): void {
  addStoreOptions(program
    .command('logs')
    .description('print the log of a run')
    .argument('<run>', 'run id, as `keelson runs` shows it')
    .option('-f, --follow', 'keep printing new output until the run has finished'))
    .action(async (runText: string, flags: LogsFlags) => {
      await withStoreFromOptions(flags, async (store) => {
        const id = await findRun(store, runText);
        if (!flags.follow) {
          const { text } = await store.readLog(id);
          return writeStdout(text);
        }
        for await (const chunk of followLog(store, id)) await writeStdout(chunk);
      });
    });
}

/** Waits until stdout took the text, so that following a long log keeps memory flat. */
function writeStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

async function findRun(store: Store, text: string): Promise<RunId> {
  let id: RunId | undefined;
  try {
    id = parseRunId(text);
  } catch {
    id = undefined;
  }
  if (id === undefined || (await store.getRun(id)) === undefined) {
    throw new InputError(`run "${text}" not found in ${store.description}`, 'list runs with `keelson runs`');
  }
  return id;
}
