import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Session, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit, usageError } from '../errors.js';
import { type OutputFlags, formatOf, printList, printOne, withOutput } from '../formats.js';
import { printFields, printJson, printTable, time } from '../output.js';

/** `bulwark schemas add | list | show | validate`: the telemetry schema registry. */

interface Schema {
  readonly name: string;
  readonly version: number;
  readonly document: Record<string, unknown>;
  readonly createdAt: number;
  readonly createdBy: string;
}
interface Problem {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}
interface SchemaCheck {
  readonly ok: boolean;
  readonly id: string | null;
  readonly problems: string[];
  readonly registered: boolean;
  readonly latestVersion: number | null;
  readonly data?: { readonly ok: boolean; readonly problems: Problem[] };
}
interface FieldSpec {
  type?: unknown;
  'x-unit'?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  'x-sensitive'?: unknown;
  'x-retention-days'?: unknown;
}

const SCHEMA_REF = /^([a-z0-9][a-z0-9._-]{0,63})(?:@([1-9][0-9]{0,5}))?$/;
const versionPath = (name: string, version: number, rest = '') => `/api/v1/schemas/${encodeURIComponent(name)}/versions/${version}${rest}`;

function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError('BULWARK_CLI_FILE', `${what} ${file} is not JSON: ${(err as Error).message}`);
  }
}

function readDocument(file: string): Record<string, unknown> {
  const doc = readJsonFile(file, 'schema file');
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw usageError(`${file} must hold one JSON object (a JSON Schema whose $id is name@version)`);
  return doc as Record<string, unknown>;
}

const idOf = (s: Schema) => `${s.name}@${s.version}`;
const fieldsOf = (s: Schema) => Object.entries((s.document.properties ?? {}) as Record<string, FieldSpec>);
const summary = (s: Schema) => ({
  id: idOf(s),
  name: s.name,
  version: s.version,
  fields: fieldsOf(s)
    .map(([f]) => f)
    .join(' '),
  createdAt: s.createdAt,
  createdBy: s.createdBy,
});

/** `name` (its highest version) or `name@version`. */
async function findSchema(session: Session, ref: string): Promise<Schema> {
  const m = SCHEMA_REF.exec(ref);
  if (!m) throw usageError(`"${ref}" is not a schema name or name@version (e.g. env-sensor@2)`);
  if (m[2] !== undefined) return session.call<Schema>('GET', versionPath(m[1] as string, Number(m[2])));
  const versions = (await session.call<Schema[]>('GET', '/api/v1/schemas')).filter((s) => s.name === m[1]);
  const latest = versions.sort((a, b) => b.version - a.version)[0];
  if (latest === undefined) throw new CliError('BULWARK_ERR_NOT_FOUND', `no schema named ${m[1]}`);
  return latest;
}

function render(s: Schema): void {
  console.log(`${idOf(s)}`);
  printFields([
    ['created', `${time(s.createdAt)} by ${s.createdBy}`],
    ['required', ((s.document.required ?? []) as string[]).join(', ') || null],
  ]);
  const cell = (v: unknown) => (v === undefined ? null : typeof v === 'string' || typeof v === 'number' ? v : JSON.stringify(v));
  printTable(
    ['field', 'type', 'unit', 'min', 'max', 'sensitive', 'retention days'],
    fieldsOf(s).map(([f, spec]) => [f, cell(spec.type), cell(spec['x-unit']), cell(spec.minimum), cell(spec.maximum), cell(spec['x-sensitive']), cell(spec['x-retention-days'])]),
    'No fields.',
  );
}

const problemLine = (p: Problem) => `  ${p.path || '/'}: expected ${p.expected}, got ${p.got}`;

export function addSchemaCommands(program: Command, env: Env): void {
  const schemas = program.command('schemas').description('telemetry schemas: versioned JSON Schemas with units and ranges that readings are validated against');

  schemas
    .command('add')
    .description('register a schema version from a JSON file (its $id is name@version); a new version must be compatible with the previous one')
    .argument('<file>', 'JSON Schema file')
    .option('--json', 'print the registered schema as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const s = await openSession(env).call<Schema>('POST', '/api/v1/schemas', { body: readDocument(file) });
      if (o.json) return printJson(s);
      console.log(`Registered ${idOf(s)} (${fieldsOf(s).length} field${fieldsOf(s).length === 1 ? '' : 's'}).`);
    });

  withOutput(schemas.command('list').description('every registered schema version').option('--name <name>', 'only the versions of this schema')).action(async (o: OutputFlags & { name?: string }) => {
    const format = formatOf(o);
    const list = (await openSession(env).call<Schema[]>('GET', '/api/v1/schemas')).filter((s) => o.name === undefined || s.name === o.name);
    // A CSV row cannot hold a whole document: one line per version with its fields.
    if (format === 'csv') return printList(format, list.map(summary), { head: [], row: () => [], empty: '' });
    printList(format, list, { head: ['schema', 'fields', 'created', 'by'], row: (s) => [idOf(s), summary(s).fields, time(s.createdAt), s.createdBy], empty: 'No schemas.' });
  });

  withOutput(schemas.command('show').description('one schema version with its fields, units and ranges (without @VERSION: the highest version)').argument('<schema>', 'NAME or NAME@VERSION')).action(async (ref: string, o: OutputFlags) => {
    const format = formatOf(o);
    const s = await findSchema(openSession(env), ref);
    printOne(format, format === 'csv' ? summary(s) : s, () => render(s));
  });

  schemas
    .command('validate')
    .description('check a schema file as registering it would (it compiles, its version is new, it is compatible with the previous one), or a data object against a schema file or a registered NAME@VERSION; stores nothing. Exit 1 when something is wrong')
    .argument('<schema>', 'a schema file, or NAME@VERSION of a registered schema (with --data or --data-file)')
    .option('--data <json>', 'a data object to check, e.g. \'{"temp_c": 21.5}\'')
    .option('--data-file <file>', 'a file holding the data object to check')
    .option('--json', 'print the result as JSON')
    .action(async (target: string, o: { data?: string; dataFile?: string; json?: boolean }) => {
      if (o.data !== undefined && o.dataFile !== undefined) throw usageError('give --data or --data-file, not both');
      const data = o.dataFile !== undefined ? readJsonFile(o.dataFile, 'data file') : o.data !== undefined ? parseData(o.data) : undefined;
      const session = openSession(env);
      if (existsSync(target)) return reportCheck(await session.call<SchemaCheck>('POST', '/api/v1/schemas/check', { body: { schema: readDocument(target), ...(data !== undefined ? { data } : {}) } }), o.json);
      const m = SCHEMA_REF.exec(target);
      if (!m || m[2] === undefined) throw usageError(`${target}: no such file, and not NAME@VERSION of a registered schema`);
      if (data === undefined) throw usageError(`checking against the registered ${target} needs a data object: --data JSON or --data-file FILE`);
      const r = await session.call<{ ok: boolean; problems: Problem[] }>('POST', versionPath(m[1] as string, Number(m[2]), '/validate'), { body: { data } });
      if (o.json) printJson(r);
      else console.log(r.ok ? `The data is valid against ${target}.` : [`The data is not valid against ${target}:`, ...r.problems.map(problemLine)].join('\n'));
      if (!r.ok) throw new Exit(EXIT.failure);
    });
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usageError(`--data is not JSON: ${(err as Error).message}`);
  }
}

function reportCheck(r: SchemaCheck, json: boolean | undefined): void {
  if (json) printJson(r);
  else {
    const id = r.id ?? 'the schema';
    if (r.registered) console.log(`${id} is registered, with this very document.`);
    else if (r.problems.length === 0) console.log(`${id} would register${r.latestVersion === null ? ' (the first version of its name)' : ` (compatible with version ${r.latestVersion})`}.`);
    else console.log([`${id} would not register:`, ...r.problems.map((p) => `  ${p}`)].join('\n'));
    if (r.data) console.log(r.data.ok ? `The data is valid against ${id}.` : [`The data is not valid against ${id}:`, ...r.data.problems.map(problemLine)].join('\n'));
  }
  if (!r.ok) throw new Exit(EXIT.failure);
}
