import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InputError, messageOf } from '../../errors.js';
import { loadValuesFiles, mergeValues, parseSetFlags, readTemplateFile, renderTemplate } from '../../template/index.js';
import { collect } from '../program.js';

interface RenderFlags {
  readonly set: string[];
  readonly values: string[];
  readonly output?: string;
}

/** `keelson render TEMPLATE|- [--set k=v]... [--values F]... [-o F]`: stencil's replacement. */
export function registerRenderCommand(program: Command): void {
  program
    .command('render')
    .description('render a Handlebars or Go-template (stencil) YAML template, strictly, and check the result')
    .argument('<template>', 'template file, or - to read standard input')
    .option('--set <key=value>', 'a value (repeatable); dotted keys nest: duat.gitBranch=main', collect, [])
    .option('--values <file>', 'a YAML or JSON file of values (repeatable; later files and --set win)', collect, [])
    .option('-o, --output <file>', 'write to this file (replaced atomically) instead of standard output')
    .action(async (template: string, flags: RenderFlags) => {
      // --set is checked before any file is read: a usage error costs nothing
      const set = parseSetFlags(flags.set);
      const values = mergeValues(await loadValuesFiles(flags.values), set);
      const fromStdin = template === '-';
      const source = fromStdin ? await readStdin() : await readTemplateFile(template);
      const rendered = renderTemplate(source, values, { templateName: fromStdin ? '<stdin>' : template });
      if (flags.output) await writeAtomically(flags.output, rendered.text);
      else process.stdout.write(rendered.text);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Temp file next to the target, then rename: readers never see half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { flag: 'wx' });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new InputError(path, `cannot write the output: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, { cause: error });
  }
}
