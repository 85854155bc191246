import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type Certificate, certificateStatus } from '../api.js';
import { getText, openSession, serverUrl } from '../client.js';
import type { Env } from '../credentials.js';
import { writePublicFile } from '../files.js';
import { usageError } from '../errors.js';
import { printJson, printTable, time } from '../output.js';
import { addRotateCommand } from './enroll.js';

/** `bulwark certs list | expiring | revoke | rotate`. */
export function addCertCommands(program: Command, env: Env): void {
  const certs = program.command('certs').description('device certificates: list, expiring, revoke, rotate');

  certs.command('list')
    .description("a device's certificates, oldest first")
    .argument('<id>', 'device id')
    .option('--json', 'print a JSON array')
    .action(async (id: string, opts: { json?: boolean }) => {
      const list = await openSession(env).call<Certificate[]>('GET', `/api/v1/devices/${encodeURIComponent(id)}/certificates`);
      if (opts.json) return printJson(list);
      printTable(['serial', 'not before', 'not after', 'first used', 'status'],
        list.map((c) => [c.serial, time(c.notBefore), time(c.notAfter), time(c.firstUsedAt), certificateStatus(c)]), `No certificates for ${id}.`);
    });

  certs.command('expiring')
    .description('devices whose newest live certificate ends within the window, or has ended, soonest first')
    .option('--within <days>', 'how far ahead: 30d, or a number of days', '30d')
    .option('--limit <n>', 'at most this many rows', '1000')
    .option('--json', 'print a JSON array')
    .action(async (opts: { within: string; limit: string; json?: boolean }) => {
      const m = /^(\d{1,4})d?$/.exec(opts.within.trim());
      if (!m || Number(m[1]) > 3650) throw usageError(`--within: "${opts.within}" is not a number of days (30d, 90; at most 3650)`);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw usageError('--limit: a whole number from 1 to 10000');
      const list = await openSession(env).call<(Certificate & { expired: boolean; msLeft: number })[]>('GET', `/api/v1/certificates/expiring?days=${Number(m[1])}&limit=${limit}`);
      if (opts.json) return printJson(list);
      const left = (ms: number) => (ms <= 0 ? `ended ${Math.floor(-ms / 86_400_000)}d ago` : `${Math.floor(ms / 86_400_000)}d ${Math.floor((ms % 86_400_000) / 3_600_000)}h`);
      printTable(['device', 'serial', 'not after', 'left'], list.map((c) => [c.deviceId, c.serial, time(c.notAfter), left(c.msLeft)]), `No certificate ends within ${Number(m[1])} days.`);
    });

  certs.command('revoke')
    .description('revoke one certificate: a session using it ends now, the CRL lists it')
    .argument('<serial>', 'serial number, hex (from "bulwark certs list")')
    .option('--reason <reason>', 'why (letters, digits, spaces and ._:-)')
    .option('--json', 'print the certificate as JSON')
    .action(async (serial: string, opts: { reason?: string; json?: boolean }) => {
      const c = await openSession(env).call<Certificate>('POST', `/api/v1/certificates/${encodeURIComponent(serial)}/revoke`, {
        body: opts.reason !== undefined ? { reason: opts.reason } : {},
      });
      if (opts.json) return printJson(c);
      console.log(`Revoked certificate ${c.serial} of ${c.deviceId} (${c.revocationReason ?? 'no reason'}); a session using it was ended and the CRL lists it.`);
    });

  addRotateCommand(certs, env);
}

/** `bulwark pki ca | crl`: the public PKI files, no login needed. */
export function addPkiCommands(program: Command, env: Env): void {
  const pki = program.command('pki').description('the device CA chain and its revocation list (public, no login needed)');
  const files = [
    ['ca', '/api/v1/pki/ca.pem', 'the device CA chain (root, then issuing), PEM: the trust store for devices and MQTT clients'],
    ['crl', '/api/v1/pki/crl.pem', 'the issuing CA\'s certificate revocation list, PEM (re-signed on every revocation)'],
  ] as const;
  for (const [name, path, description] of files) {
    pki.command(name)
      .description(description)
      .option('--out <file>', 'write it to this file instead of standard output')
      .option('--url <url>', 'server URL (default: $BULWARK_URL, else the saved login)')
      .action(async (opts: { out?: string; url?: string }) => {
        const pem = await getText(serverUrl(env, opts.url), path);
        if (opts.out === undefined) return void process.stdout.write(pem.endsWith('\n') ? pem : `${pem}\n`);
        writePublicFile(resolve(opts.out), pem);
        console.error(`Wrote ${resolve(opts.out)}.`);
      });
  }
}
