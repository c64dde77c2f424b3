import type { Command } from 'commander';
import { stringify } from 'yaml';
import { UsageError } from '../errors.js';

/** kubectl's `-o` formats for listing commands; `table` is the default, `--json` = `-o json`. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface OutputFlags {
  readonly output?: string;
  readonly json?: boolean;
}

/** Adds `-o, --output FORMAT` and `--json` to a listing command. */
export function addOutputOptions(command: Command): Command {
  return command
    .option('-o, --output <format>', `output format: ${OUTPUT_FORMATS.join(', ')} (default: table)`)
    .option('--json', 'print JSON (same as -o json)');
}

/** The format the flags ask for; checked before anything is read, so a typo is exit 2 at once. */
export function outputFormat(flags: OutputFlags): OutputFormat {
  const asked = flags.output ?? (flags.json ? 'json' : 'table');
  if (flags.json && flags.output !== undefined && flags.output !== 'json') {
    throw new UsageError(`--json and -o ${flags.output} ask for two formats; give one`);
  }
  if (!(OUTPUT_FORMATS as readonly string[]).includes(asked)) {
    throw new UsageError(`-o: unknown format "${asked}" (expected ${OUTPUT_FORMATS.join(', ')})`);
  }
  return asked as OutputFormat;
}

/** How one kind of item is listed: its table columns (wide adds some) and its name. */
export interface Listing<T> {
  readonly columns: readonly string[];
  readonly wideColumns?: readonly string[];
  row(item: T, wide: boolean): readonly string[];
  name(item: T): string;
  /** The JSON/YAML form of an item. @default the item itself */
  data?(item: T): unknown;
}

/** Formats `items` as asked. An empty table is the header alone; callers say "nothing" on stderr. */
export function formatList<T>(items: readonly T[], format: OutputFormat, listing: Listing<T>): string {
  const data = (): unknown[] => items.map((item) => (listing.data ? listing.data(item) : item));
  switch (format) {
    case 'json':
      return `${JSON.stringify(data(), null, 2)}\n`;
    case 'yaml':
      return stringify(data());
    case 'name':
      return items.map((item) => `${listing.name(item)}\n`).join('');
    case 'table':
    case 'wide': {
      const wide = format === 'wide';
      const header = [...listing.columns, ...(wide ? listing.wideColumns ?? [] : [])];
      return formatTable([header, ...items.map((item) => listing.row(item, wide))]);
    }
  }
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
