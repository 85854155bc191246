import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { ttlOption } from '../api.js';
import { positiveInt } from '../args.js';
import { type ManifestDevice, readManifest } from '../batch-file.js';
import { getText, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { csvField } from '../csv.js';
import { CliError, EXIT } from '../errors.js';
import { writePublicFile } from '../files.js';
import { printJson, relative, time } from '../output.js';

interface BatchAnswer {
  readonly batchId: string | null;
  readonly devices: { id: string; token?: string; expiresAt?: number; certificate?: string; serial?: string }[];
}

const DEFAULT_CHUNK = 500;

function batchId(value: string): string {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(value)) throw new InvalidArgumentError('1-64 letters, digits, ".", "_", ":" or "-"');
  return value;
}

/** `bulwark devices batch`: factory onboarding from a CSV or JSON manifest. */
export function addBatchCommand(devices: Command, env: Env): void {
  devices
    .command('batch')
    .description('register many devices from a CSV (header: id, serial, model, hw_rev, csr, …) or JSON file; claim tokens go to DIR/tokens.csv, certificates for CSRs to DIR/<id>.crt')
    .argument('<file>', 'the manifest: .csv with a header row, or a .json array of {id, serial, model, hardwareRevision, csr}; a CSR may be PEM text or the path of a .csr file')
    .option('--out <dir>', 'where tokens.csv, <id>.crt and ca.crt go (default: the current directory)')
    .option('--batch-id <id>', 'name of the batch, kept with every token (default: cli-<time>)', batchId)
    .addOption(ttlOption())
    .option('--chunk-size <n>', `devices per request (default ${DEFAULT_CHUNK})`, positiveInt(5000))
    .option('--json', 'print the summary as JSON (and no progress bar)')
    .action(async (file: string, opts: { out?: string; batchId?: string; ttlSeconds?: number; chunkSize?: number; json?: boolean }) => {
      const started = performance.now();
      const manifest = await readManifest(resolve(file));
      const session = openSession(env);
      const out = resolve(opts.out ?? '.');
      mkdirSync(out, { recursive: true, mode: 0o700 });
      const tokensPath = join(out, 'tokens.csv');
      let fd: number;
      try {
        // Claim tokens are secrets: 0600, and never written over (they are shown only once).
        fd = openSync(tokensPath, 'wx', 0o600);
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code === 'EEXIST' ? 'already exists (it may hold tokens shown only once): choose another --out' : (err as Error).message;
        throw new CliError('BULWARK_CLI_USAGE', `${tokensPath} ${why}`, EXIT.usage);
      }
      const id =
        opts.batchId ??
        `cli-${new Date()
          .toISOString()
          .replace(/[-:]/g, '')
          .replace(/\.\d+Z$/, 'Z')}`;
      const size = opts.chunkSize ?? DEFAULT_CHUNK;
      const total = manifest.devices.length;
      const bar = !opts.json && process.stderr.isTTY ? new cliProgress.SingleBar({ stream: process.stderr, format: 'onboarding [{bar}] {value}/{total} devices | {eta_formatted} left', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
      let done = 0;
      let tokens = 0;
      let certificates = 0;
      let expiresAt: number | undefined;
      try {
        writeSync(fd, 'id,token,expires_at\n');
        bar?.start(total, 0);
        for (let i = 0; i < total; i += size) {
          const chunk: ManifestDevice[] = manifest.devices.slice(i, i + size);
          let answer: BatchAnswer;
          try {
            answer = await session.call<BatchAnswer>('POST', '/api/v1/devices/batch', {
              body: { batchId: id, devices: chunk, ...(opts.ttlSeconds !== undefined ? { ttlSeconds: opts.ttlSeconds } : {}) },
            });
          } catch (err) {
            bar?.stop();
            if (done === 0) rmSync(tokensPath, { force: true });
            const rest = manifest.where[i] ?? '?';
            console.error(`Stopped: ${done} of ${total} devices were onboarded${done > 0 ? ` (their tokens are in ${tokensPath})` : ''}; nothing from ${rest} on was. Fix the problem below and run again with the rest of the file.`);
            throw err;
          }
          for (const d of answer.devices) {
            if (d.token !== undefined) {
              writeSync(fd, `${csvField(d.id)},${csvField(d.token)},${new Date(d.expiresAt ?? 0).toISOString()}\n`);
              tokens += 1;
              expiresAt = d.expiresAt;
            }
            if (d.certificate !== undefined) {
              writePublicFile(join(out, `${d.id}.crt`), d.certificate);
              certificates += 1;
            }
          }
          done += chunk.length;
          bar?.update(done);
        }
        bar?.stop();
      } finally {
        closeSync(fd);
      }
      if (certificates > 0) writePublicFile(join(out, 'ca.crt'), await getText(session.url, '/api/v1/pki/ca.pem'));
      const seconds = (performance.now() - started) / 1000;
      const summary = { batchId: id, devices: done, tokens, certificates, requests: Math.ceil(total / size), seconds: Math.round(seconds * 100) / 100, tokensFile: tokensPath, certificateDir: out };
      if (opts.json) return printJson(summary);
      console.log(`Onboarded ${done} devices in ${summary.requests} request${summary.requests === 1 ? '' : 's'} in ${seconds.toFixed(1)} s (batch ${id}).`);
      if (tokens > 0) console.log(`  ${tokens} claim tokens → ${tokensPath} (0600; each works once${expiresAt !== undefined ? `, until ${time(expiresAt)}, ${relative(expiresAt)}` : ''}). Hand them to the devices, then delete the file.`);
      if (certificates > 0) console.log(`  ${certificates} certificates for the CSRs → ${out}/<id>.crt, with the CA chain in ${join(out, 'ca.crt')}`);
    });
}
