import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type Certificate, certificateStatus } from '../api.js';
import { getText, openSession, serverUrl } from '../client.js';
import type { Env } from '../credentials.js';
import { writePublicFile } from '../files.js';
import { usageError } from '../errors.js';
import { printJson, printTable, time } from '../output.js';
import { addRotateCommand } from './enroll.js';

/** One of the device CA's issuing CAs (GET /api/v1/pki/issuing-cas). */
interface IssuingCa {
  readonly id: string;
  readonly name: string;
  readonly fingerprint: string;
  readonly state: 'active' | 'previous' | 'retired';
  readonly liveCertificates: number;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly createdAt: number;
  readonly retiredAt: number | null;
  readonly certificate: string;
}

const caRows = (list: readonly IssuingCa[]) => list.map((c) => [c.id, c.state, c.state === 'retired' ? '-' : c.liveCertificates, time(c.createdAt), time(c.notAfter), time(c.retiredAt), c.fingerprint.slice(0, 16)]);
const CA_HEAD = ['id', 'state', 'live certificates', 'created', 'not after', 'retired', 'fingerprint'];

/** `bulwark certs list | expiring | revoke | rotate | cas | ca-rollover | ca-retire`. */
export function addCertCommands(program: Command, env: Env): void {
  const certs = program.command('certs').description('device certificates: list, expiring, revoke, rotate; the issuing CAs: cas, ca-rollover, ca-retire');

  certs
    .command('list')
    .description("a device's certificates, oldest first")
    .argument('<id>', 'device id')
    .option('--json', 'print a JSON array')
    .action(async (id: string, opts: { json?: boolean }) => {
      const list = await openSession(env).call<Certificate[]>('GET', `/api/v1/devices/${encodeURIComponent(id)}/certificates`);
      if (opts.json) return printJson(list);
      printTable(
        ['serial', 'not before', 'not after', 'first used', 'status'],
        list.map((c) => [c.serial, time(c.notBefore), time(c.notAfter), time(c.firstUsedAt), certificateStatus(c)]),
        `No certificates for ${id}.`,
      );
    });

  certs
    .command('expiring')
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
      printTable(
        ['device', 'serial', 'not after', 'left'],
        list.map((c) => [c.deviceId, c.serial, time(c.notAfter), left(c.msLeft)]),
        `No certificate ends within ${Number(m[1])} days.`,
      );
    });

  certs
    .command('revoke')
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
  addIssuingCaCommands(certs, env);
}

/** `bulwark certs cas | ca-rollover | ca-retire`: the issuing CAs of the device CA. */
function addIssuingCaCommands(certs: Command, env: Env): void {
  certs
    .command('cas')
    .description('the issuing CAs, the active one first: state, device certificates from each that still work, validity')
    .option('--json', 'print a JSON array (with each CA certificate, PEM)')
    .action(async (opts: { json?: boolean }) => {
      const list = await openSession(env).call<IssuingCa[]>('GET', '/api/v1/pki/issuing-cas');
      if (opts.json) return printJson(list);
      printTable(CA_HEAD, caRows(list), 'No issuing CA.');
    });

  certs
    .command('ca-rollover')
    .description('a new issuing CA signs every new device certificate from now on; the previous one stays trusted until its certificates have ended or been renewed (needs pki:write)')
    .option('--json', 'print the new active CA and the previous ones as JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await openSession(env).call<{ active: IssuingCa; previous: IssuingCa[] }>('POST', '/api/v1/pki/issuing-ca/rollover', { body: {} });
      if (opts.json) return printJson(r);
      console.log(`Issuing CA ${r.active.id} is active: enrolments and renewals get certificates from it (${r.active.name}).`);
      for (const c of r.previous) {
        console.log(`${c.id} stays trusted for its ${c.liveCertificates} certificates that still work; it is retired once none does (renew them with a job: bulwark jobs create --group GROUP --rotate-certificates).`);
      }
      console.log('No session was ended. Devices verify the server up to the root, so they need nothing new first.');
    });

  certs
    .command('ca-retire')
    .description('stop trusting a previous issuing CA: its certificates are refused and their sessions end (refused while some still work, unless --force) (needs pki:write)')
    .argument('<id>', 'issuing CA id (from "bulwark certs cas")')
    .option('--force', 'retire it although certificates from it still work: those devices are cut off until they enroll again')
    .option('--json', 'print the CA as JSON')
    .action(async (id: string, opts: { force?: boolean; json?: boolean }) => {
      const c = await openSession(env).call<IssuingCa>('POST', `/api/v1/pki/issuing-cas/${encodeURIComponent(id)}/retire`, { body: opts.force ? { force: true } : {} });
      if (opts.json) return printJson(c);
      console.log(`Retired issuing CA ${c.id}: its certificates are refused from now on, and the root CRL lists it.`);
    });
}

/** `bulwark pki ca | crl`: the public PKI files, no login needed. */
export function addPkiCommands(program: Command, env: Env): void {
  const pki = program.command('pki').description('the device CA chain and its revocation list (public, no login needed)');
  const files = [
    ['ca', '/api/v1/pki/ca.pem', 'the device CA chain (root, then the trusted issuing CAs, the active one first), PEM: the trust store for devices and MQTT clients'],
    ['crl', '/api/v1/pki/crl.pem', 'the certificate revocation lists of the trusted issuing CAs, PEM, one after the other (re-signed on every revocation)'],
  ] as const;
  for (const [name, path, description] of files) {
    pki
      .command(name)
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
