import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Node has no mkfifo; coreutils does. */
export async function mkfifo(path: string): Promise<void> {
  await promisify(execFile)('mkfifo', [path]);
}
