import Table from 'cli-table3';
import { toCsv } from './csv.js';

/** Everything the CLI prints goes through here, so commands read as what they say. */

export type JsonStyle = 'json' | 'ndjson' | 'csv';
let jsonStyle: JsonStyle = 'json';

/** How printJson writes for the rest of the run: `--output ndjson|csv` on a command that prints JSON. */
export function setJsonStyle(style: JsonStyle): void {
  jsonStyle = style;
}

/** JSON (an array for lists); as NDJSON, one object a line; as CSV, one row per object. */
export function printJson(value: unknown): void {
  if (jsonStyle === 'json' || value === null || typeof value !== 'object') {
    console.log(JSON.stringify(value, null, 2));
    return;
  }
  const items: unknown[] = Array.isArray(value) ? value : [value];
  if (jsonStyle === 'ndjson') for (const item of items) console.log(JSON.stringify(item));
  else process.stdout.write(toCsv(items.map((item) => (item !== null && typeof item === 'object' ? item : { value: item }))));
}

export function warn(message: string): void {
  console.error(`warning: ${message}`);
}

type Cell = string | number | null | undefined;

/** A plain table (no colours: output is often piped or logged). */
export function printTable(head: readonly string[], rows: readonly (readonly Cell[])[], empty: string): void {
  if (rows.length === 0) {
    console.log(empty);
    return;
  }
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((c) => (c === null || c === undefined ? '-' : String(c))));
  console.log(table.toString());
}

/** Aligned `label  value` lines for `show` commands. */
export function printFields(fields: readonly (readonly [string, Cell])[], indent = '  '): void {
  const width = Math.max(...fields.map(([label]) => label.length));
  for (const [label, value] of fields) console.log(`${indent}${label.padEnd(width)}  ${value === null || value === undefined ? '-' : value}`);
}

/**
 * `[████░░░░] 50%`: a bar drawn once, in the characters of the live cli-progress bars
 * (shades_classic). A cli-progress bar started and stopped at once prints twice when the
 * output is not a terminal.
 */
export function bar(done: number, total: number, width = 40): string {
  const share = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const full = Math.round(share * width);
  return `[${'\u2588'.repeat(full)}${'\u2591'.repeat(width - full)}] ${Math.floor(share * 100)}%`;
}

/** `2025-11-26 06:09:01Z`, or `-` for no time. */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** `in 14 min`, `3 h ago`: for expiries people read at a glance. */
export function relative(ms: number, now: number = Date.now()): string {
  const diff = ms - now;
  const abs = Math.abs(diff);
  const [n, unit] = abs < 60_000 ? [Math.round(abs / 1000), 's'] : abs < 3_600_000 ? [Math.round(abs / 60_000), 'min'] : abs < 172_800_000 ? [Math.round(abs / 3_600_000), 'h'] : [Math.round(abs / 86_400_000), 'days'];
  return diff >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

/** A box drawn around some lines, with a title in its top edge. */
export function box(title: string, lines: readonly string[]): string {
  const width = Math.max(title.length + 4, ...lines.map((l) => l.length + 4));
  const top = `┌─ ${title} ${'─'.repeat(width - title.length - 3)}┐`;
  const body = lines.map((l) => `│ ${l.padEnd(width - 2)} │`);
  return [top, ...body, `└${'─'.repeat(width)}┘`].join('\n');
}
