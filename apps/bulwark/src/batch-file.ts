import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join } from 'node:path';
// The subpath, not the package: the device contract's schemas cost a CLI start about a second.
import { deviceIdProblem } from '@bulwark/protocol/device-id';
import { CliError, EXIT } from './errors.js';

/**
 * The manifest `bulwark devices batch` reads: CSV with a header row, or a JSON array. Every
 * problem in the file is reported at once, before anything is sent.
 */

export interface ManifestDevice {
  readonly id: string;
  readonly serial?: string;
  readonly model?: string;
  readonly hardwareRevision?: string;
  readonly firmwareVersion?: string;
  readonly owner?: string;
  readonly location?: string;
  readonly tags?: string[];
  readonly csr?: string;
}

/** Where each device came from, for error messages. */
export interface Manifest {
  readonly devices: ManifestDevice[];
  readonly where: string[];
}

type Field = Exclude<keyof ManifestDevice, 'tags'> | 'tags';

/** CSV header names (case-insensitive) and JSON keys, to fields. */
const COLUMNS: Readonly<Record<string, Field>> = {
  id: 'id',
  serial: 'serial',
  model: 'model',
  hardware_revision: 'hardwareRevision',
  hw_rev: 'hardwareRevision',
  hardwarerevision: 'hardwareRevision',
  firmware: 'firmwareVersion',
  firmware_version: 'firmwareVersion',
  firmwareversion: 'firmwareVersion',
  owner: 'owner',
  location: 'location',
  tags: 'tags',
  csr: 'csr',
};
const MAX_PROBLEMS = 20;

/** RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks (an inline PEM). */
export function parseCsv(text: string): { cells: string[]; line: number }[] {
  const records: { cells: string[]; line: number }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i += 1) {
    const ch = s[i] as string;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line += 1;
        cell += ch;
      }
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && s[i + 1] === '\n') i += 1;
      cells.push(cell);
      if (cells.some((c) => c.trim() !== '')) records.push({ cells, line: start });
      cells = [];
      cell = '';
      line += 1;
      start = line;
    } else cell += ch;
  }
  cells.push(cell);
  if (cells.some((c) => c.trim() !== '')) records.push({ cells, line: start });
  return records;
}

export async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('BULWARK_CLI_USAGE', `cannot read ${file}: ${(err as Error).message}`, EXIT.usage);
  }
  const problems: string[] = [];
  const raw = extname(file).toLowerCase() === '.json' || /^\s*\[/.test(text) ? fromJson(file, text, problems) : fromCsv(file, text, problems);
  const devices: ManifestDevice[] = [];
  const where: string[] = [];
  const seen = new Map<string, string>();
  const { csrProblem } = raw.some((r) => r.fields.csr !== undefined) ? await import('./device-keys.js') : { csrProblem: undefined };
  for (const { at, fields } of raw) {
    const id = fields.id ?? '';
    const idProblem = deviceIdProblem(id);
    if (idProblem) problems.push(`${at}: ${id === '' ? 'no id' : `"${id}" cannot be a device id (${idProblem.replace(/_/g, ' ')})`}`);
    else if (seen.has(id)) problems.push(`${at}: device ${id} already appears at ${seen.get(id)}`);
    else seen.set(id, at);
    let csr = fields.csr;
    if (csr !== undefined && !csr.startsWith('-----BEGIN')) {
      const path = isAbsolute(csr) ? csr : join(dirname(file), csr);
      try {
        csr = readFileSync(path, 'utf8');
      } catch (err) {
        problems.push(`${at}: cannot read the CSR file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        csr = undefined;
      }
    }
    if (csr !== undefined && csrProblem) {
      const problem = await csrProblem(csr);
      if (problem) problems.push(`${at}: the CSR of ${id} is refused: ${problem}`);
    }
    const tags = fields.tags?.split(/[;\s]+/).filter((t) => t !== '');
    devices.push(Object.fromEntries(Object.entries({ ...fields, id, tags, csr }).filter(([, v]) => v !== undefined)) as unknown as ManifestDevice);
    where.push(at);
  }
  if (devices.length === 0 && problems.length === 0) problems.push('no devices in the file');
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_PROBLEMS);
    const more = problems.length > MAX_PROBLEMS ? `\n  … and ${problems.length - MAX_PROBLEMS} more` : '';
    throw new CliError('BULWARK_CLI_MANIFEST', `${file}: nothing was sent; ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  - ${shown.join('\n  - ')}${more}`, EXIT.usage);
  }
  return { devices, where };
}

type Raw = { at: string; fields: Partial<Record<Field, string>> };

function fromCsv(file: string, text: string, problems: string[]): Raw[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) return [];
  const fields: (Field | undefined)[] = header.cells.map((h) => COLUMNS[h.trim().toLowerCase()]);
  const unknown = header.cells.filter((_, i) => fields[i] === undefined);
  if (unknown.length > 0) problems.push(`${file} line 1: unknown column${unknown.length === 1 ? '' : 's'} ${unknown.map((u) => `"${u}"`).join(', ')} (known: ${Object.keys(COLUMNS).join(', ')})`);
  if (!fields.includes('id')) problems.push(`${file} line 1: the header has no "id" column`);
  return rows.map(({ cells, line }) => {
    const out: Partial<Record<Field, string>> = {};
    cells.forEach((c, i) => {
      const f = fields[i];
      if (f !== undefined && c.trim() !== '') out[f] = c.trim();
    });
    if (cells.length > header.cells.length) problems.push(`line ${line}: ${cells.length} cells for ${header.cells.length} columns`);
    return { at: `line ${line}`, fields: out };
  });
}

function fromJson(file: string, text: string, problems: string[]): Raw[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    problems.push(`${file}: not valid JSON: ${(err as Error).message}`);
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push(`${file}: expected a JSON array of devices`);
    return [];
  }
  return parsed.map((item: unknown, i) => {
    const at = `item ${i}`;
    const out: Partial<Record<Field, string>> = {};
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(`${at}: expected an object like {"id": "sensor-1", "serial": "…"}`);
      return { at, fields: out };
    }
    for (const [k, v] of Object.entries(item)) {
      const f = COLUMNS[k.toLowerCase()];
      if (f === undefined) problems.push(`${at}: unknown key "${k}"`);
      else if (f === 'tags' && Array.isArray(v) && v.every((t) => typeof t === 'string')) out.tags = v.join(';');
      else if (typeof v === 'string') out[f] = v;
      else if (v !== null) problems.push(`${at}: "${k}" must be ${f === 'tags' ? 'an array of strings' : 'a string'}`);
    }
    return { at, fields: out };
  });
}
