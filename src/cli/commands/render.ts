import { randomBytes } from 'node:crypto';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InputError, messageOf } from '../../errors.js';
import { checkoutValues, loadValuesFiles, mergeValues, parseSetFlags, readTemplateFile, renderTemplate } from '../../template/index.js';
import { collect } from '../program.js';

interface RenderFlags {
  readonly set: string[];
  readonly values: string[];
  readonly output?: string;
  readonly directory?: string;
  readonly kubernetes?: boolean;
}

/** `keelson render TEMPLATE|- [--set k=v]... [--values F]... [-o F]`: stencil's replacement. */
export function registerRenderCommand(program: Command): void {
  program
    .command('render')
    .description('render a Handlebars or Go-template (stencil) template strictly: Kubernetes YAML is checked, any other text is rendered as it is')
    .argument('<template>', 'template file, or - to read standard input')
    .option('--set <key=value>', 'a value (repeatable); dotted keys nest: duat.gitBranch=main', collect, [])
    .option('--values <file>', 'a YAML or JSON file of values (repeatable; later files and --set win)', collect, [])
    .option('-o, --output <file>', 'write to this file (replaced atomically; mode 0600 when it holds a Secret) instead of standard output')
    .option('-C, --directory <dir>', 'the git checkout duat.gitBranch, duat.gitHash, duat.version... come from (default: the current directory)')
    .option('--kubernetes', 'check the output as Kubernetes objects even when it does not look like Kubernetes YAML')
    .action(async (template: string, flags: RenderFlags) => {
      // --set is checked before any file is read: a usage error costs nothing
      const set = parseSetFlags(flags.set);
      // stencil's duat.* values come from the checkout it runs in; --values and --set win.
      const checkout = await checkoutValues(flags.directory ?? process.cwd());
      const values = mergeValues(mergeValues(checkout, await loadValuesFiles(flags.values)), set);
      const fromStdin = template === '-';
      const source = fromStdin ? await readStdin() : await readTemplateFile(template);
      const rendered = renderTemplate(source, values, {
        templateName: fromStdin ? '<stdin>' : template,
        requireKubernetesObjects: flags.kubernetes === true ? true : 'auto',
      });
      // A rendered Secret holds credentials: readable by its owner only.
      const secret = rendered.documents.some((document) => document.kind === 'Secret' ||
        (Array.isArray(document.items) && document.items.some((item: { kind?: unknown } | null) => item?.kind === 'Secret')));
      if (flags.output) await writeAtomically(flags.output, rendered.text, secret ? 0o600 : undefined);
      else process.stdout.write(rendered.text);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Temp file next to the target, then rename: readers never see half a file. */
async function writeAtomically(path: string, text: string, mode: number | undefined): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
    if (mode !== undefined) await chmod(temp, mode);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new InputError(path, `cannot write the output: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`, { cause: error });
  }
}
