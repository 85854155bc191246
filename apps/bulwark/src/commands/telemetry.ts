import { createWriteStream, existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, usageError } from '../errors.js';
import { type DownloadProgress, type ExportFormat, downloadExport, resumePoint } from '../export-download.js';
import { addReplayCommand } from './telemetry-replay.js';

interface ExportOptions {
  device?: string;
  tag?: string;
  schema?: string;
  since: string;
  until: string;
  format?: ExportFormat;
  out?: string;
  resume?: boolean;
  decrypt?: boolean;
  retries: number;
}

/** How often a progress line on a terminal is redrawn. */
const REDRAW_MS = 250;
/** Off a terminal, a progress line every this many readings. */
const PLAIN_EVERY = 100_000;

/** `bulwark telemetry export` (the group is where telemetry commands live). */
export function addTelemetryCommands(program: Command, env: Env): Command {
  const telemetry = program.command('telemetry').description('stored telemetry: export a time range, replay the stream into the store');

  telemetry
    .command('export')
    .description('stream the readings of one device, tag or schema over a time range as NDJSON or CSV, to standard output or a file; a broken download resumes by itself from the last reading written')
    .option('--device <id>', 'readings of this device')
    .option('--tag <tag>', 'readings of the devices that carry this tag now')
    .option('--schema <schema>', 'readings of this schema: name@version, or a name for all its versions')
    .requiredOption('--since <time>', 'start of the range, inclusive: ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z) or epoch ms')
    .requiredOption('--until <time>', 'end of the range, exclusive')
    .addOption(new Option('--format <format>', 'output format (default: from the --out extension, else ndjson)').choices(['ndjson', 'csv']))
    .option('--out <file>', 'write to this file instead of standard output (progress on standard error)')
    .option('--resume', 'continue the download that left --out unfinished, from its last whole line')
    .option('--decrypt', 'show fields stored encrypted in clear (needs telemetry:decrypt; audited)')
    .option('--retries <n>', 'attempts in a row that may break without progress before giving up (default 5)', positiveInt(100), 5)
    .action(async (opts: ExportOptions) => {
      const filters = (['device', 'tag', 'schema'] as const).filter((k) => opts[k] !== undefined);
      if (filters.length !== 1) throw usageError(`give exactly one of --device, --tag or --schema${filters.length > 1 ? ` (got --${filters.join(', --')})` : ''}`);
      if (opts.resume && opts.out === undefined) throw usageError('--resume continues a file: give it with --out');
      const format: ExportFormat = opts.format ?? (opts.out?.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson');
      const resumed = opts.resume && opts.out !== undefined && existsSync(opts.out) ? resumePoint(opts.out, format) : undefined;
      const out: Writable = opts.out === undefined ? process.stdout : createWriteStream(opts.out, { flags: resumed ? 'a' : 'w' });
      const progress = progressLine(opts.out !== undefined && process.stderr.isTTY === true);
      const done = await downloadExport({
        session: openSession(env),
        query: { device: opts.device, tag: opts.tag, schema: opts.schema, since: opts.since, until: opts.until, decrypt: opts.decrypt ? true : undefined },
        format,
        out,
        cursor: resumed?.cursor,
        headerWritten: resumed?.headerWritten ?? false,
        retries: opts.retries,
        onProgress: opts.out === undefined ? undefined : progress.show,
        onRetry: (n, why) => progress.note(`connection lost (${why}); resuming from the last reading written (${n})`),
      }).finally(() => progress.clear());
      if (out !== process.stdout) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(new CliError('BULWARK_CLI_FILE', `cannot write ${opts.out}: ${err.message}`)) : resolve())));
      if (opts.out !== undefined) {
        const resumedNote = done.resumed > 0 ? `, resumed ${done.resumed} time${done.resumed === 1 ? '' : 's'}` : '';
        process.stderr.write(`Exported ${done.readings} readings (${mb(done.bytes)})${resumed ? ' more' : ''} to ${opts.out}${resumedNote}.\n`);
      }
    });
  addReplayCommand(telemetry, env);
  return telemetry;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** One progress line on standard error, redrawn in place on a terminal; notes always get their own line. */
function progressLine(tty: boolean): { show: (p: DownloadProgress) => void; note: (text: string) => void; clear: () => void } {
  let drawnAt = 0;
  let drawn = false;
  let plainAt = PLAIN_EVERY;
  const clear = () => {
    if (drawn) process.stderr.write('\r\x1b[K');
    drawn = false;
  };
  return {
    show(p) {
      if (!tty) {
        if (p.readings >= plainAt) process.stderr.write(`${p.readings} readings, ${mb(p.bytes)}\n`);
        while (plainAt <= p.readings) plainAt += PLAIN_EVERY;
        return;
      }
      if (Date.now() - drawnAt < REDRAW_MS) return;
      drawnAt = Date.now();
      process.stderr.write(`\r\x1b[K${p.readings} readings, ${mb(p.bytes)}`);
      drawn = true;
    },
    note(text) {
      clear();
      process.stderr.write(`${text}\n`);
    },
    clear,
  };
}
