import { existsSync, readFileSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type Issued, createClaimToken, ttlOption } from '../api.js';
import { openSession, send, serverUrl } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, usageError } from '../errors.js';
import { identityFiles, prepareNewIdentityDir, writeKeyFile, writePublicFile } from '../files.js';
import { printJson, time, warn } from '../output.js';

interface Written {
  readonly deviceId: string;
  readonly serial: string;
  readonly notAfter: number;
  readonly files: { readonly key: string; readonly cert: string; readonly ca: string };
}

/** Writes device.key (0600), device.crt and ca.crt; the key file is replaced atomically. */
export function writeIdentity(dir: string, keyPem: string, issued: Issued): Written {
  const files = identityFiles(dir);
  writeKeyFile(files.key, keyPem);
  writePublicFile(files.cert, issued.certificate);
  writePublicFile(files.ca, issued.caChain);
  return { deviceId: issued.deviceId, serial: issued.serial, notAfter: issued.notAfter, files };
}

function readToken(value: string): string {
  if (value !== '-') return value.trim();
  const text = readFileSync(0, 'utf8').trim();
  if (text === '') throw usageError('--token -: standard input was empty');
  return text;
}

/** `bulwark devices enroll`: the key is made here and never sent; only its CSR is. */
export function addEnrollCommand(devices: Command, env: Env): void {
  devices
    .command('enroll')
    .description('make a P-256 key and CSR here, trade a claim token and the CSR for a certificate, write DIR/device.key (0600), DIR/device.crt and DIR/ca.crt')
    .argument('<id>', 'device id')
    .requiredOption('--out <dir>', 'directory for device.key, device.crt and ca.crt (created 0700 if missing)')
    .option('--token <token>', 'claim token (bct.…) from "bulwark devices token" or a batch; "-" reads it from standard input. Without it, one is created with your login')
    .option('--url <url>', 'server URL (with --token no login is needed; default: $BULWARK_URL, else the saved login)')
    .addOption(ttlOption())
    .option('--force', 'replace a device.key already in --out')
    .option('--json', 'print {deviceId, serial, notAfter, files} as JSON')
    .action(async (id: string, opts: { out: string; token?: string; url?: string; ttlSeconds?: number; force?: boolean; json?: boolean }) => {
      if (opts.token !== undefined && opts.ttlSeconds !== undefined) throw usageError('--ttl-seconds applies only when no --token is given');
      const dir = resolve(opts.out);
      prepareNewIdentityDir(dir, opts.force === true);
      let url: string;
      let token: string;
      if (opts.token !== undefined) {
        token = readToken(opts.token);
        url = serverUrl(env, opts.url);
      } else {
        const session = openSession(opts.url !== undefined ? { ...env, BULWARK_URL: opts.url } : env);
        token = (await createClaimToken(session, id, opts.ttlSeconds)).token;
        url = session.url;
      }
      const { makeKeyAndCsr } = await import('../device-keys.js');
      const keys = await makeKeyAndCsr(id);
      const issued = await send<Issued>(url, 'POST', '/api/v1/enroll', { body: { token, csr: keys.csrPem } });
      // The token is used up now: keep what it bought even if it names another device.
      const written = writeIdentity(dir, keys.keyPem, issued);
      if (issued.deviceId !== id) {
        throw new CliError('BULWARK_CLI_WRONG_DEVICE', `the claim token belongs to device ${issued.deviceId}, not ${id}: ${dir} now holds the identity of ${issued.deviceId}`);
      }
      if (opts.json) return printJson(written);
      console.log(`Enrolled ${issued.deviceId}: certificate ${issued.serial}, valid until ${time(issued.notAfter)}.`);
      console.log(`  ${written.files.key}  private key (0600; it never left this machine)`);
      console.log(`  ${written.files.cert}  device certificate`);
      console.log(`  ${written.files.ca}  CA chain (root and issuing) to verify the server`);
      console.log(`Connect with MQTT over TLS using client id ${issued.deviceId}, e.g.:`);
      console.log(`  mosquitto_pub -V mqttv311 -h HOST -p PORT -i ${issued.deviceId} --cafile ${written.files.ca} --cert ${written.files.cert} --key ${written.files.key} -t devices/${issued.deviceId}/telemetry -m '{}'`);
    });
}

/** `bulwark certs rotate`: operator rotation with a new key made in the key directory. */
export function addRotateCommand(certs: Command, env: Env): void {
  certs
    .command('rotate')
    .description('make a new key and CSR in the --key-dir directory, have the server certify it, keep the old files as device.key.old and device.crt.old; the old certificate retires when the new one is first used')
    .argument('<id>', 'device id')
    .requiredOption('--key-dir <dir>', "the directory with the device's device.key and device.crt")
    .option('--json', 'print {deviceId, serial, notAfter, files} as JSON')
    .action(async (id: string, opts: { keyDir: string; json?: boolean }) => {
      const dir = resolve(opts.keyDir);
      if (!existsSync(dir)) throw usageError(`--key-dir ${dir} does not exist`);
      const files = identityFiles(dir);
      const session = openSession(env);
      const { makeKeyAndCsr } = await import('../device-keys.js');
      const keys = await makeKeyAndCsr(id);
      const issued = await session.call<Issued>('POST', `/api/v1/devices/${encodeURIComponent(id)}/certificates`, { body: { csr: keys.csrPem } });
      const kept: string[] = [];
      for (const file of [files.key, files.cert]) {
        try {
          renameSync(file, `${file}.old`);
          kept.push(`${file}.old`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError('BULWARK_CLI_FILE', `cannot keep ${file} as ${file}.old: ${(err as Error).message}`);
        }
      }
      if (kept.length === 0) warn(`${dir} held no device.key or device.crt: writing a fresh identity there`);
      const written = writeIdentity(dir, keys.keyPem, issued);
      if (opts.json) return printJson({ ...written, old: kept });
      console.log(`Issued certificate ${issued.serial} for ${issued.deviceId}, valid until ${time(issued.notAfter)}.`);
      console.log(`  ${written.files.key} and ${written.files.cert} are new; the previous ones are ${kept.length > 0 ? kept.join(' and ') : 'none'}.`);
      console.log('The previous certificate keeps working until the device first connects with the new one (or the overlap window ends); then it is revoked.');
    });
}
