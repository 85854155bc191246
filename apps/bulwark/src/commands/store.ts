import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { CopyProgress, StoreCopyReport } from '@bulwark/server';
import type { Env } from '../credentials.js';
import { CliError, EXIT, usageError } from '../errors.js';
import { printJson } from '../output.js';

/** A plain progress line at most every this many rows of one table, when output is not a terminal. */
const LINE_EVERY_ROWS = 100_000;

/**
 * `bulwark store migrate`: the embedded store (SQLite and the firmware files) into an empty
 * PostgreSQL, for a cluster. The work, the checks and the verification are the server
 * library's `copyStore`; this reads the flags and the master key, and shows progress.
 */
export function addStoreCommands(program: Command, env: Env): void {
  const store = program.command('store').description("the store itself, on the server's machine: move an embedded deployment to PostgreSQL");
  store
    .command('migrate')
    .description("copy a stopped embedded node's whole store (every table, and its firmware images) into an empty PostgreSQL database for a cluster, in one transaction, verified (row counts, audit chain, image SHA-256) before it commits")
    .requiredOption('--from <source>', "the embedded node's data directory, or sqlite:<path to its bulwark.db>")
    .requiredOption('--to <url>', 'an empty PostgreSQL database: postgres://user[:password]@host[:port]/database')
    .option('--data <dir>', 'where the embedded node keeps firmware/ (default: the directory of the source)')
    .option('--master-key-file <file>', "the master key the cluster's nodes will use, checked against the source (default: $BULWARK_MASTER_KEY)")
    .option('--batch-rows <n>', 'rows per INSERT', (v) => positive(v, '--batch-rows'), 1000)
    .option('--json', 'print the report as JSON')
    .action(async (opts: { from: string; to: string; data?: string; masterKeyFile?: string; batchRows: number; json?: boolean }) => {
      const masterKey = masterKeyFrom(opts.masterKeyFile, env);
      const server = await import('@bulwark/server');
      const progress = progressView(!opts.json && process.stderr.isTTY === true);
      let report: StoreCopyReport;
      try {
        report = await server.copyStore({
          from: opts.from,
          to: opts.to,
          masterKey,
          batchRows: opts.batchRows,
          onProgress: progress.show,
          ...(opts.data !== undefined ? { dataDir: opts.data } : {}),
        });
      } catch (err) {
        progress.stop();
        const audit = (err as { details?: { audit?: unknown } }).details?.audit;
        if (audit !== undefined) throw new CliError('BULWARK_ERR_CONFLICT', (err as Error).message, EXIT.auditBroken);
        throw err;
      }
      progress.stop();
      if (opts.json) return printJson(report);
      console.log(`Copied ${report.source} into ${report.target}: ${report.rows} rows in ${report.tables.filter((x) => x.rows > 0).length} tables, ${report.images.length} firmware image${report.images.length === 1 ? '' : 's'}.`);
      console.log(`Verified: every table's row count, the audit chain (${report.audit.entriesChecked} entries), every image's SHA-256 read back from PostgreSQL.`);
      console.log(`Master key ${report.masterKeyId} opens the store (${report.secretsOpened} secrets): give every node that key (BULWARK_MASTER_KEY), and the firmware root key set file.`);
      console.log('Start the nodes on that database in cluster mode (--store, --bus; docs/guides/cluster.md). Keep the embedded data directory until the cluster runs.');
    });
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a positive integer`);
  return n;
}

/** The key the cluster will be given: a file (--master-key-file) or BULWARK_MASTER_KEY. Without one, nothing can be checked. */
function masterKeyFrom(file: string | undefined, env: Env): { text: string; origin: string } {
  if (file !== undefined) {
    try {
      return { text: readFileSync(file, 'utf8'), origin: file };
    } catch (err) {
      throw usageError(`--master-key-file ${file} cannot be read: ${(err as Error).message}`);
    }
  }
  const fromEnv = env.BULWARK_MASTER_KEY;
  if (fromEnv) return { text: fromEnv, origin: 'BULWARK_MASTER_KEY' };
  throw usageError("give the master key the cluster's nodes will use, so that the copy can check it opens this store: set BULWARK_MASTER_KEY, or --master-key-file <data>/master.key for a node that kept its key in its data directory");
}

/** A bar on a terminal; otherwise a line per table, per image and per verification step. */
function progressView(tty: boolean): { show: (p: CopyProgress) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  let table = '';
  let tableDone = 0;
  let printedAt = 0;
  const newBar = (format: string, total: number) => {
    bar?.stop();
    bar = new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { table: '' });
  };
  const show = (p: CopyProgress) => {
    if (p.kind === 'plan') {
      if (tty) newBar('rows   [{bar}] {value}/{total} | {table} | {eta_formatted} left', p.rows);
      else console.error(`copying ${p.rows} rows in ${p.tables.length} tables and ${p.images} firmware images (${p.imageBytes} bytes)`);
    } else if (p.kind === 'rows') {
      if (p.table !== table) {
        table = p.table;
        tableDone = 0;
        printedAt = 0;
      }
      done += p.copied - tableDone;
      tableDone = p.copied;
      if (tty) bar?.update(done, { table: p.table });
      else if (p.of > 0 && (p.copied === p.of || p.copied - printedAt >= LINE_EVERY_ROWS)) {
        printedAt = p.copied;
        console.error(`${p.table}: ${p.copied}/${p.of} rows`);
      }
    } else if (p.kind === 'image') {
      if (tty) {
        if (table !== p.id) {
          table = p.id;
          newBar(`image ${p.id} [{bar}] {value}/{total} bytes`, p.of);
        }
        bar?.update(p.bytes);
      } else if (p.bytes === p.of) console.error(`firmware ${p.id}: ${p.of} bytes`);
    } else {
      bar?.stop();
      bar = undefined;
      console.error(`verifying ${p.step === 'rows' ? 'row counts' : p.step === 'audit' ? 'the audit chain' : 'firmware images'}…`);
    }
  };
  return { show, stop: () => bar?.stop() };
}
