/** CSV as the CLI writes it: RFC 4180, nested objects flattened into `parent.child` columns. */

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
