import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { KeelsonError, isKeelsonError, messageOf } from '../errors.js';
import { redactSecrets } from '../log/index.js';
import { registerCommands } from './commands/index.js';

/** Exit status: 0 success, 1 a pipeline failed, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Thrown by a command to end with a given status without printing anything more. */
export class ExitStatus extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

export function buildProgram(): Command {
  const program = new Command('keelson')
    .description('commit-to-rollout pipeline daemon')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError(false)
    .allowExcessArguments(false)
    .configureOutput({
      // commander's own errors (unknown flag, missing argument) become our one-line format
      outputError: (text, write) => write(`keelson: ${text.replace(/^error: /, '').trim()}\n`),
    })
    .exitOverride();
  registerCommands(program);
  program.hook('preAction', (_program, action) => resolvePathOptions(action));
  // Subcommands inherit the strictness: an unknown flag or a stray argument is exit 2.
  for (const command of program.commands) {
    command.exitOverride().allowExcessArguments(false).configureOutput(program.configureOutput());
  }
  return program;
}

/** Runs the CLI and resolves to the process exit status; never throws. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    return exitStatusFor(error);
  }
}

export function exitStatusFor(error: unknown): number {
  if (error instanceof ExitStatus) return error.status;
  if (error instanceof CommanderError) {
    // help and version are "errors" in commander's exitOverride model, but succeed
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE; // commander already printed the one-line message
  }
  if (isKeelsonError(error)) {
    process.stderr.write(`keelson: ${redactSecrets(oneLine(error.message))}\n`);
    return error.exitCode;
  }
  process.stderr.write(`keelson: internal error: ${redactSecrets(oneLine(messageOf(error)))}\n`);
  if (process.env.KEELSON_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return EXIT_FAILED;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ');
}

/**
 * Makes every path flag (`<file>`, `<dir>` or `<path>` in its definition) absolute, against the
 * directory keelson was started in, before any command sees it: paths are handed to git, to
 * child processes with another working directory, and stored, where a relative one means
 * something else.
 */
export function resolvePathOptions(command: Command): void {
  for (const option of command.options) {
    if (!/<(file|dir|path)>/.test(option.flags)) continue;
    const name = option.attributeName();
    const value: unknown = command.getOptionValue(name);
    const absolute = (text: string): string => (text === '' ? text : path.resolve(text));
    if (typeof value === 'string') command.setOptionValueWithSource(name, absolute(value), command.getOptionValueSource(name));
    else if (Array.isArray(value)) command.setOptionValueWithSource(name, value.map((v) => (typeof v === 'string' ? absolute(v) : v)), command.getOptionValueSource(name));
  }
}

/** `--flag value` repeated: collects into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export { Command, Option, KeelsonError };
