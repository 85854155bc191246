import { readFileSync, writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { SignedReceipt } from '@bulwark/server';
import type { Device } from '../api.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, usageError } from '../errors.js';
import { printJson, relative, time } from '../output.js';

/** An end-of-life receipt as the API gives it (signed; see GET /api/v1/system/receipt-key). */
type Receipt = SignedReceipt;

const path = (id: string, rest: string) => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;
const policyOption = (values: string[], description: string, fallback?: string) => {
  const o = new Option('--data <policy>', description).choices(values);
  return fallback === undefined ? o.makeOptionMandatory() : o.default(fallback);
};
const receiptOption = () => new Option('--receipt <file>', 'where to write the signed receipt (default: receipt-<id>.json here)');

/** Saves the receipt and says what it holds. */
function report(r: Receipt, file: string | undefined, json: boolean, extra?: unknown): void {
  const out = file ?? `receipt-${r.id}.json`;
  writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  if (json) return printJson(extra ?? r);
  const counted =
    Object.entries(r.data)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'nothing';
  const verb = r.policy === 'keep' ? 'kept' : r.policy === 'erase' ? 'erased' : `pseudonymised (readings now under ${r.pseudonym ?? '?'}; the rest erased)`;
  console.log(`Receipt ${r.id} (${r.kind} of ${r.deviceId}, ${time(r.at)}) written to ${out}.`);
  if (r.revoked.length > 0) console.log(`  revoked: ${r.revoked.join(', ')}`);
  if (r.cancelled.jobEntries + r.cancelled.commands > 0) console.log(`  cancelled: ${r.cancelled.jobEntries} job entries, ${r.cancelled.commands} commands`);
  console.log(`  data ${verb}: ${counted}`);
  console.log(`Check it any time with: bulwark receipts verify ${out}`);
}

/** `bulwark devices decommission | erase | transfer` (end of life, with receipts) and `bulwark receipts verify`. */
export function addEndOfLifeCommands(program: Command, devices: Command, env: Env): void {
  devices
    .command('decommission')
    .description('retire a device for good as one operation: certificates revoked, session ended, jobs and commands cancelled, the data policy applied; writes the signed receipt')
    .argument('<id>', 'device id')
    .addOption(policyOption(['keep', 'erase', 'pseudonymise'], 'what happens to its data: keep, erase, or pseudonymise (readings kept under a pseudonym, the rest erased)', 'keep'))
    .addOption(receiptOption())
    .option('--json', 'print the device with its receipt as JSON')
    .action(async (id: string, opts: { data: string; receipt?: string; json?: boolean }) => {
      const d = await openSession(env).call<Device & { receipt: Receipt }>('POST', path(id, '/decommission'), { body: { data: opts.data } });
      if (!opts.json) console.log(`Device ${d.id} is decommissioned: its certificates are revoked and it cannot come back.`);
      report(d.receipt, opts.receipt, opts.json === true, d);
    });

  devices
    .command('erase')
    .description('erasure request: erase (or pseudonymise) everything held about a device that stays in service; writes the signed receipt')
    .argument('<id>', 'device id')
    .addOption(policyOption(['erase', 'pseudonymise'], 'erase, or pseudonymise (readings kept under a pseudonym, the rest erased)'))
    .addOption(receiptOption())
    .option('--json', 'print the receipt as JSON')
    .action(async (id: string, opts: { data: string; receipt?: string; json?: boolean }) => {
      const r = await openSession(env).call<{ receipt: Receipt }>('POST', path(id, '/erase'), { body: { data: opts.data } });
      report(r.receipt, opts.receipt, opts.json === true);
    });

  devices
    .command('transfer')
    .description("resale: hand a device (also a decommissioned one) to a new owner with a fresh claim token; the previous owner's data is erased or pseudonymised; writes the signed receipt")
    .argument('<id>', 'device id')
    .requiredOption('--owner <owner>', 'the new owner: a user or service account id (usr_…, svc_…) or group:<id>')
    .addOption(policyOption(['erase', 'pseudonymise'], "what happens to the previous owner's data"))
    .addOption(receiptOption())
    .option('--json', 'print {device, receipt, claimToken} as JSON')
    .action(async (id: string, opts: { owner: string; data: string; receipt?: string; json?: boolean }) => {
      const r = await openSession(env).call<{ device: Device; receipt: Receipt; claimToken: { token: string; expiresAt: number } }>('POST', path(id, '/transfer'), { body: { owner: opts.owner, data: opts.data } });
      if (!opts.json) {
        console.log(`Device ${r.device.id} now belongs to ${opts.owner} (state ${r.device.state}).`);
        console.log(`Claim token for the new owner, shown only now; expires ${time(r.claimToken.expiresAt)} (${relative(r.claimToken.expiresAt)}):`);
        console.log(`  ${r.claimToken.token}`);
      }
      report(r.receipt, opts.receipt, opts.json === true, r);
    });

  program
    .command('receipts')
    .description('end-of-life receipts')
    .command('verify')
    .description("check a receipt's signature against the platform's receipt key")
    .argument('<file>', 'the receipt (JSON)')
    .option('--json', 'print {receiptId, valid, keyId} as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      let receipt: Receipt;
      try {
        receipt = JSON.parse(readFileSync(file, 'utf8')) as Receipt;
      } catch (err) {
        throw usageError(`${file}: not a readable JSON receipt (${(err as Error).message})`);
      }
      const key = await openSession(env).call<{ keyId: string; publicKeyPem: string }>('GET', '/api/v1/system/receipt-key');
      // The server's own check, loaded only for this command (the CLI does not load the server otherwise).
      const { verifyReceipt } = await import('@bulwark/server');
      const valid = receipt.keyId === key.keyId && verifyReceipt(receipt, key.publicKeyPem);
      if (opts.json) printJson({ receiptId: receipt.id, valid, keyId: key.keyId });
      else console.log(valid ? `Receipt ${receipt.id} is genuine: signed by key ${key.keyId}, unchanged since.` : `Receipt ${receipt.id} does NOT verify against key ${key.keyId}.`);
      if (!valid) throw new CliError('BULWARK_CLI_RECEIPT_INVALID', `receipt ${receipt.id} does not verify`, EXIT.failure);
    });
}
