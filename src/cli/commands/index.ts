import type { Command } from 'commander';
import { registerCiCommand } from './ci.js';
import { registerApproveCommand } from './approve.js';
import { registerRenderCommand } from './render.js';
import { registerPolicyCommand } from './policy.js';
import { registerRunsCommand } from './runs.js';
import { registerLogsCommand } from './logs.js';
import { registerWatchCommand } from './watch.js';
import { registerRunCommand } from './run.js';
import { registerReleaseCommand } from './release.js';
import { registerPromoteCommand } from './promote.js';
import { registerDaemonCommand } from './daemon.js';

/** Each command lives in its own module and adds itself to the program here. */
export function registerCommands(program: Command): void {
  registerCiCommand(program);
  registerApproveCommand(program);
  registerRenderCommand(program);
  registerPolicyCommand(program);
  registerRunsCommand(program);
  registerLogsCommand(program);
  registerWatchCommand(program);
  registerRunCommand(program);
  registerReleaseCommand(program);
  registerPromoteCommand(program);
  registerDaemonCommand(program);
}
