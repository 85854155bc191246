import { type Command, Option } from 'commander';
import { usageError } from './errors.js';
import { toCsv } from './csv.js';
import { printJson, printTable, setJsonStyle } from './output.js';

/**
 * `--output table|json|ndjson|csv` for list, show and query commands. `--json` stays what it
 * always was, the same as `--output json`. JSON is an array for lists (one object for
 * `show`); NDJSON one object a line; CSV a header row and one row per object, nested
 * objects flattened into `parent.child` columns.
 */

export const OUTPUT_FORMATS = ['table', 'json', 'ndjson', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface OutputFlags {
  output?: OutputFormat;
  json?: boolean;
}

/** Adds `--output` and `--json` to a command. */
export function withOutput(command: Command, formats: readonly OutputFormat[] = OUTPUT_FORMATS): Command {
  return command.addOption(new Option('--output <format>', `output format: ${formats.join(', ')} (default table)`).choices([...formats])).option('--json', 'print JSON (the same as --output json)');
}

export function formatOf(flags: OutputFlags): OutputFormat {
  if (flags.json && flags.output !== undefined && flags.output !== 'json') throw usageError(`--json and --output ${flags.output} contradict each other: give one`);
  return flags.json ? 'json' : (flags.output ?? 'table');
}

/**
 * Gives every command that takes `--json` and has no `--output` of its own an `--output` too:
 * `json` is `--json`; `ndjson` and `csv` reshape what `--json` prints; `table` is the default.
 */
export function offerOutputEverywhere(command: Command): void {
  const options = command.options.map((o) => o.long);
  if (options.includes('--json') && !options.includes('--output')) {
    command.addOption(new Option('--output <format>', 'output format: table, json (the same as --json), ndjson, csv (default table)').choices([...OUTPUT_FORMATS]));
    command.hook('preAction', (self) => {
      const format = formatOf(self.opts<OutputFlags>());
      if (format === 'table') return;
      self.setOptionValue('json', true);
      setJsonStyle(format);
    });
  }
  for (const sub of command.commands) offerOutputEverywhere(sub);
}

type Cell = string | number | null | undefined;

export interface TableView<T> {
  readonly head: readonly string[];
  readonly row: (item: T) => readonly Cell[];
  readonly empty: string;
}

/** A list in the chosen format; `table` draws `view`. */
export function printList<T extends object>(format: OutputFormat, items: readonly T[], view: TableView<T>): void {
  if (format === 'json') printJson(items);
  else if (format === 'ndjson') for (const item of items) console.log(JSON.stringify(item));
  else if (format === 'csv') process.stdout.write(toCsv(items));
  else printTable(view.head, items.map(view.row), view.empty);
}

/** One object in the chosen format; `table` calls `show`. */
export function printOne<T extends object>(format: OutputFormat, item: T, show: (item: T) => void): void {
  if (format === 'table') show(item);
  else if (format === 'json') printJson(item);
  else printList(format, [item], { head: [], row: () => [], empty: '' });
}

/** `temp_c=21.5 note="door open"`: a reading's data on one line. */
export function dataText(data: Readonly<Record<string, unknown>>): string {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v)}`)
    .join(' ');
}
