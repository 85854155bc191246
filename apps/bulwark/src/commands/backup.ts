import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type * as ServerModule from '@bulwark/server';
import type { Env } from '../credentials.js';
import { CliError, EXIT, usageError } from '../errors.js';
import { printJson } from '../output.js';

/**
 * `bulwark backup` and `bulwark restore`: an embedded node's whole state, on its machine,
 * safe while it runs. The work is the server library's; this reads flags and config.
 */
export function addBackupCommands(program: Command, env: Env): void {
  program
    .command('backup')
    .description(
      'back up an embedded node into a new directory, safe while it runs: a consistent snapshot of the SQLite store, the firmware images, the firmware root key set and the node id, with a manifest of SHA-256 sums (PostgreSQL: use pg_dump, see docs/guides/backup.md)',
    )
    .requiredOption('--out <dir>', 'a new (or empty) directory for the backup')
    .option('--data <dir>', 'the data directory the node runs with (default: $BULWARK_DATA_DIR or ./.bulwark)')
    .option('--config <file>', 'the JSON config file the node runs with, for its store file and firmware root key set (default: $BULWARK_CONFIG)')
    .option('--with-master-key', 'put <data>/master.key in the backup too (by default it is kept apart: whoever holds both reads every secret)')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { out: string; data?: string; config?: string; withMasterKey?: boolean; json?: boolean }) => {
      const server = await import('@bulwark/server');
      const config = nodeConfig(server, env, opts.data, opts.config);
      const target = config.store === 'sqlite' || config.store.startsWith('sqlite:') ? config.store : undefined;
      if (target === undefined) throw usageError('this node keeps its store in PostgreSQL: back it up with pg_dump (firmware images included), and keep the master key and the firmware root key set file (docs/guides/backup.md)');
      const report = await server.backupEmbedded({
        dataDir: config.dataDir,
        out: opts.out,
        withMasterKey: opts.withMasterKey === true,
        ...(target.startsWith('sqlite:') ? { storeFile: target.slice('sqlite:'.length) } : {}),
        ...(config.ota.rootKeysFile !== undefined ? { rootKeysFile: config.ota.rootKeysFile } : {}),
      });
      if (opts.json) return printJson(report);
      const m = report.manifest;
      console.log(
        `Backed up ${config.dataDir} into ${report.out}: the store (${m.auditEntries} audit entries, chain verified), ${m.files.filter((f) => f.part === 'firmware').length} firmware images, ${m.files.length} files with their SHA-256 in ${server.BACKUP_MANIFEST}.`,
      );
      if (report.masterKeyApart !== null) {
        console.log(`The master key (${m.masterKeyIds.join(', ')}) is not in the backup: keep a copy of ${report.masterKeyApart} apart from it; without the key the backup cannot be read.`);
      }
    });

  program
    .command('restore')
    .description('restore a backup made by `bulwark backup` into a new data directory: every file checked against the manifest, the master key checked against the store, the audit chain verified')
    .requiredOption('--from <dir>', 'the backup directory')
    .requiredOption('--data <dir>', 'a new (or empty) data directory')
    .option('--master-key-file <file>', 'the master key, when the backup does not hold it (written to <data>/master.key); or set BULWARK_MASTER_KEY (checked, not written: start the node with it)')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { from: string; data: string; masterKeyFile?: string; json?: boolean }) => {
      const server = await import('@bulwark/server');
      const masterKey = opts.masterKeyFile !== undefined ? { text: readKey(opts.masterKeyFile), origin: opts.masterKeyFile, write: true } : env.BULWARK_MASTER_KEY ? { text: env.BULWARK_MASTER_KEY, origin: 'BULWARK_MASTER_KEY', write: false } : undefined;
      const report = await server.restoreEmbedded({ from: opts.from, dataDir: opts.data, ...(masterKey ? { masterKey } : {}) });
      if (opts.json) return printJson(report);
      console.log(`Restored ${report.files} files (${report.images} firmware images) into ${report.dataDir}; master key ${report.masterKeyId} opens the store; the audit chain verifies (${report.auditEntries} entries).`);
      if (report.masterKey === 'BULWARK_MASTER_KEY') console.log('Start the node with the same BULWARK_MASTER_KEY.');
      if (report.rootKeysFrom !== null) console.log(`The firmware root key set is in ${report.dataDir}/firmware-root.json; the node read it from ${report.rootKeysFrom}: put it back there, or set ota.rootKeysFile.`);
      console.log(`Start it with: bulwark start --data ${report.dataDir}`);
    });
}

type Server = typeof ServerModule;

function nodeConfig(server: Server, env: Env, data: string | undefined, configFile: string | undefined) {
  const flags: Record<string, unknown> = {};
  if (data !== undefined) flags.dataDir = data;
  const fileName = configFile ?? (env.BULWARK_CONFIG || undefined);
  let file: unknown;
  if (fileName !== undefined) {
    try {
      file = JSON.parse(readFileSync(fileName, 'utf8'));
    } catch (err) {
      throw new CliError('BULWARK_ERR_CONFIG_INVALID', `${fileName}: ${err instanceof SyntaxError ? 'not valid JSON' : 'cannot be read'}: ${(err as Error).message}`, EXIT.usage);
    }
  }
  return server.loadConfig({ flags, env, ...(file !== undefined && fileName !== undefined ? { file, fileName } : {}) });
}

function readKey(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw usageError(`--master-key-file ${path} cannot be read: ${(err as Error).message}`);
  }
}
