import { type Command, Option } from 'commander';
import { pointInTime, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError } from '../errors.js';
import { type OutputFlags, dataText, formatOf, printList, printOne, withOutput } from '../formats.js';
import { printFields, time } from '../output.js';
import { addLiveCommand } from './telemetry-live.js';
import { addTraceCommand } from './telemetry-trace.js';

/** `bulwark telemetry query | latest | rollups | live`: reading stored telemetry back. */

export interface Reading {
  readonly msgId: string;
  readonly schemaId: string;
  readonly seq: number | null;
  readonly boot: string | null;
  readonly deviceTs: number | null;
  readonly receivedAt: number;
  readonly ts: number;
  readonly skewMs: number | null;
  readonly data: Record<string, unknown>;
}

interface Rollup {
  readonly field: string;
  readonly schemaId: string;
  readonly bucketStart: number;
  readonly bucketMs: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

interface RangeFlags {
  since?: number;
  until?: number;
  limit?: number;
}

const devicePath = (id: string, rest: string) => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;

const range = (c: Command, limitMax: number, limitDefault: number) =>
  c
    .option('--since <time>', 'from this time on, inclusive: ISO 8601, epoch ms, or a duration ago (15m, 2h, 7d)', (v) => pointInTime(v))
    .option('--until <time>', 'before this time, exclusive (same forms as --since)', (v) => pointInTime(v))
    .option('--limit <n>', `at most this many (default ${limitDefault}, at most ${limitMax})`, positiveInt(limitMax));

function readingFields(r: Reading): [string, string | number | null][] {
  return [
    ['time', `${time(r.ts)} (normalised)`],
    ['schema', r.schemaId],
    ['message', r.msgId],
    ['device time', time(r.deviceTs)],
    ['received', time(r.receivedAt)],
    ['clock skew', r.skewMs === null ? null : `${r.skewMs} ms`],
    ['seq', r.seq === null ? null : `${r.seq}${r.boot ? ` (boot ${r.boot})` : ''}`],
  ];
}

export function addTelemetryReadCommands(telemetry: Command, env: Env): void {
  telemetry.description('stored and live telemetry: query, latest, rollups, live, export, replay');

  withOutput(
    range(telemetry.command('query'), 10_000, 1000)
      .description("a device's stored readings in time order (normalised time), oldest first unless --newest-first")
      .argument('<device>', 'device id')
      .option('--newest-first', 'newest readings first (with --limit N: the last N)')
      .option('--decrypt', 'show fields stored encrypted in clear (needs telemetry:decrypt; audited)'),
  ).action(async (id: string, o: RangeFlags & OutputFlags & { newestFirst?: boolean; decrypt?: boolean }) => {
    const format = formatOf(o);
    const rows = await openSession(env).call<Reading[]>('GET', devicePath(id, '/telemetry'), {
      query: { since: o.since, until: o.until, limit: o.limit, order: o.newestFirst ? 'desc' : undefined, decrypt: o.decrypt ? true : undefined },
    });
    printList(format, rows, { head: ['time', 'schema', 'message', 'data'], row: (r) => [time(r.ts), r.schemaId, r.msgId, dataText(r.data)], empty: `No readings from ${id} in that range.` });
  });

  withOutput(telemetry.command('latest').description("a device's most recent stored reading").argument('<device>', 'device id').option('--decrypt', 'show fields stored encrypted in clear (needs telemetry:decrypt; audited)')).action(
    async (id: string, o: OutputFlags & { decrypt?: boolean }) => {
      const format = formatOf(o);
      const [latest] = await openSession(env).call<Reading[]>('GET', devicePath(id, '/telemetry'), { query: { limit: 1, order: 'desc', decrypt: o.decrypt ? true : undefined } });
      if (latest === undefined) throw new CliError('BULWARK_CLI_NO_READINGS', `${id} has no stored readings`);
      printOne(format, latest, (r) => {
        printFields(readingFields(r), '');
        printFields(
          Object.entries(r.data).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v)]),
          '  ',
        );
      });
    },
  );

  withOutput(
    range(telemetry.command('rollups'), 10_000, 1440)
      .description('minimum, maximum, mean and count of one numeric field per minute or per hour')
      .argument('<device>', 'device id')
      .requiredOption('--field <field>', 'a numeric field of the readings, e.g. temp_c')
      .addOption(new Option('--bucket <size>', 'bucket size').choices(['1m', '1h']).default('1h')),
  ).action(async (id: string, o: RangeFlags & OutputFlags & { field: string; bucket: '1m' | '1h' }) => {
    const format = formatOf(o);
    const rows = await openSession(env).call<Rollup[]>('GET', devicePath(id, '/rollups'), {
      query: { field: o.field, resolution: o.bucket, since: o.since, until: o.until, limit: o.limit },
    });
    const n = (v: number) => Number(v.toPrecision(6));
    printList(format, rows, {
      head: ['bucket start', 'schema', 'count', 'min', 'max', 'mean'],
      row: (r) => [time(r.bucketStart), r.schemaId, r.count, n(r.min), n(r.max), n(r.mean)],
      empty: `No ${o.bucket} rollups of ${o.field} for ${id} in that range.`,
    });
  });

  addLiveCommand(telemetry, env);
  addTraceCommand(telemetry, env);
}
