import { type Command, Option } from 'commander';
import { usageError } from './errors.js';
import { printJson, printTable } from './output.js';

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
  return command
    .addOption(new Option('--output <format>', `output format: ${formats.join(', ')} (default table)`).choices([...formats]))
    .option('--json', 'print JSON (the same as --output json)');
}

export function formatOf(flags: OutputFlags): OutputFormat {
  if (flags.json && flags.output !== undefined && flags.output !== 'json') throw usageError(`--json and --output ${flags.output} contradict each other: give one`);
  return flags.json ? 'json' : (flags.output ?? 'table');
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

/** `{a: {b: 1}, c: [1, 2]}` → `{'a.b': 1, c: '[1,2]'}`: scalars as they are, arrays as JSON. */
export function flatten(value: object, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) flatten(v as object, key, out);
    else out[key] = Array.isArray(v) || (v !== null && typeof v === 'object') ? JSON.stringify(v) : v;
  }
  return out;
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled; lines end in CRLF. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The columns are every flattened key, in order of first appearance. */
export function toCsv(items: readonly object[]): string {
  const rows = items.map((item) => flatten(item));
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (columns.length === 0) return '';
  const lines = [columns.map(csvField).join(','), ...rows.map((r) => columns.map((c) => csvField(r[c])).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

/** `temp_c=21.5 note="door open"`: a reading's data on one line. */
export function dataText(data: Readonly<Record<string, unknown>>): string {
  return Object.entries(data).map(([k, v]) => `${k}=${typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v)}`).join(' ');
}
