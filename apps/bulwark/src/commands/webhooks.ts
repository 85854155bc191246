import { type Command, InvalidArgumentError } from 'commander';
import { commaList, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { EXIT, Exit } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

interface Webhook {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly filter: { schemaIds: string[]; deviceIds: string[]; tags: string[]; groups?: string[] };
  readonly state: string;
  readonly pausedReason: string | null;
  readonly pausedAt: number | null;
  readonly lag: number | null;
  readonly pending: { id: string; readings: number; attempts: number; nextAttemptAt: number | null } | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: number | null;
  readonly lastSuccessAt: number | null;
  readonly delivered: number;
  readonly createdBy: string;
  readonly createdAt: number;
  /** Only in the answers to create and rotate-secret. */
  readonly secret?: string;
}

interface DeliveryResult {
  readonly ok: boolean;
  readonly deliveryId: string;
  readonly status: number | null;
  readonly durationMs: number;
  readonly error?: string;
}

interface DeadLetter {
  readonly id: string;
  readonly readings: number;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly failedAt: number;
  readonly replayedAt: number | null;
  readonly replayResult: string | null;
  readonly readingIds: string[];
}

/** `now`, `earliest`, or an ISO time / milliseconds: where a new subscription starts. */
function parseFrom(value: string): 'now' | 'earliest' | number {
  if (value === 'now' || value === 'earliest') return value;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError('now, earliest, or a time (2026-01-01T00:00:00Z or milliseconds)');
  return ms;
}

const filterText = (f: Webhook['filter']) =>
  [f.schemaIds.length ? `schemas ${f.schemaIds.join(',')}` : '', f.deviceIds.length ? `devices ${f.deviceIds.join(',')}` : '', f.tags.length ? `tags ${f.tags.join(',')}` : '', f.groups?.length ? `groups ${f.groups.join(',')}` : '']
    .filter(Boolean)
    .join('; ') || 'every reading';

function render(w: Webhook): void {
  console.log(`${w.name} (${w.id})`);
  printFields([
    ['url', w.url],
    ['filter', filterText(w.filter)],
    ['state', w.pausedReason ? `${w.state}: ${w.pausedReason}` : w.state],
    ['lag', w.lag],
    ['pending', w.pending ? `${w.pending.id}: ${w.pending.readings} readings, ${w.pending.attempts} failed attempts, next ${time(w.pending.nextAttemptAt)}` : null],
    ['delivered', w.delivered],
    ['last success', time(w.lastSuccessAt)],
    ['last attempt', time(w.lastAttemptAt)],
    ['last error', w.lastError],
    ['created', `${time(w.createdAt)} by ${w.createdBy}`],
  ]);
}

function showSecret(w: Webhook): void {
  console.log(`\nSigning secret (shown this once; keep it with the receiver):\n  ${w.secret}`);
  console.log('Receivers check Bulwark-Signature: see docs/guides/integrations.md#webhooks.');
}

/** `bulwark webhooks create | list | show | pause | resume | delete | rotate-secret | test | dead-letters`. */
export function addWebhookCommands(program: Command, env: Env): void {
  const wh = program.command('webhooks').description('webhook subscriptions: signed batches of readings delivered to HTTPS receivers');
  const path = (id: string, rest = '') => `/api/v1/webhooks/${encodeURIComponent(id)}${rest}`;

  wh.command('create')
    .description('subscribe a receiver; prints the signing secret once')
    .requiredOption('--name <name>', 'a name for people')
    .requiredOption('--url <url>', 'https:// URL of the receiver')
    .option('--schemas <ids>', 'only readings of these schemas (name@version, comma-separated)', commaList)
    .option('--devices <ids>', 'only readings of these devices, comma-separated', commaList)
    .option('--tags <tags>', 'only readings of devices with any of these tags, comma-separated', commaList)
    .option('--groups <groups>', 'only readings of devices in any of these device groups, comma-separated', commaList)
    .option('--from <when>', 'now (default), earliest (every reading the store still holds) or a time', parseFrom)
    .option('--json', 'print the subscription (with its secret) as JSON')
    .action(async (o: { name: string; url: string; schemas?: string[]; devices?: string[]; tags?: string[]; groups?: string[]; from?: 'now' | 'earliest' | number; json?: boolean }) => {
      const filter = { ...(o.schemas ? { schemaIds: o.schemas } : {}), ...(o.devices ? { deviceIds: o.devices } : {}), ...(o.tags ? { tags: o.tags } : {}), ...(o.groups ? { groups: o.groups } : {}) };
      const w = await openSession(env).call<Webhook>('POST', '/api/v1/webhooks', { body: { name: o.name, url: o.url, filter, ...(o.from !== undefined ? { from: o.from } : {}) } });
      if (o.json) return printJson(w);
      render(w);
      showSecret(w);
    });

  wh.command('list')
    .description('every subscription with its state, lag and last error')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const list = await openSession(env).call<Webhook[]>('GET', '/api/v1/webhooks');
      if (o.json) return printJson(list);
      printTable(
        ['id', 'name', 'state', 'lag', 'delivered', 'last success', 'last error'],
        list.map((w) => [w.id, w.name, w.state, w.lag, w.delivered, time(w.lastSuccessAt), w.pausedReason ?? w.lastError]),
        'No webhooks.',
      );
    });

  wh.command('show')
    .description('one subscription')
    .argument('<id>', 'webhook id')
    .option('--json', 'print it as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const w = await openSession(env).call<Webhook>('GET', path(id));
      if (o.json) return printJson(w);
      render(w);
    });

  wh.command('pause')
    .description('stop delivering until resumed')
    .argument('<id>', 'webhook id')
    .option('--reason <text>', 'why (shown with the subscription and kept in the audit log)')
    .option('--json', 'print the subscription as JSON')
    .action(async (id: string, o: { reason?: string; json?: boolean }) => {
      const w = await openSession(env).call<Webhook>('POST', path(id, '/pause'), { body: o.reason ? { reason: o.reason } : {} });
      if (o.json) return printJson(w);
      console.log(`Webhook ${w.id} is paused.`);
    });

  wh.command('resume')
    .description('deliver again, starting with the batch under way')
    .argument('<id>', 'webhook id')
    .option('--json', 'print the subscription as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const w = await openSession(env).call<Webhook>('POST', path(id, '/resume'), { body: {} });
      if (o.json) return printJson(w);
      console.log(`Webhook ${w.id} is ${w.state}.`);
    });

  wh.command('delete')
    .description('delete a subscription and its dead letters')
    .argument('<id>', 'webhook id')
    .option('--json', 'print {"deleted": id}')
    .action(async (id: string, o: { json?: boolean }) => {
      await openSession(env).call('DELETE', path(id));
      if (o.json) return printJson({ deleted: id });
      console.log(`Webhook ${id} deleted.`);
    });

  wh.command('rotate-secret')
    .description('replace the signing secret (the old one stops at once); prints the new one once')
    .argument('<id>', 'webhook id')
    .option('--json', 'print the subscription (with its new secret) as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const w = await openSession(env).call<Webhook>('POST', path(id, '/rotate-secret'), { body: {} });
      if (o.json) return printJson(w);
      showSecret(w);
    });

  wh.command('test')
    .description('send one signed delivery without readings now and show how the receiver answered')
    .argument('<id>', 'webhook id')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await openSession(env).call<DeliveryResult>('POST', path(id, '/test'), { body: {} });
      if (o.json) return printJson(r);
      console.log(r.ok ? `Delivered (HTTP ${r.status}) in ${r.durationMs} ms.` : `Failed: ${r.error}`);
    });

  const dl = wh.command('dead-letters').description('batches that failed every attempt');
  dl.command('list')
    .description('dead-lettered batches of a subscription, newest first')
    .argument('<id>', 'webhook id')
    .option('--limit <n>', 'at most this many (default 100)', positiveInt(1000))
    .option('--json', 'print a JSON array')
    .action(async (id: string, o: { limit?: number; json?: boolean }) => {
      const list = await openSession(env).call<DeadLetter[]>('GET', path(id, `/dead-letters?limit=${o.limit ?? 100}`));
      if (o.json) return printJson(list);
      printTable(
        ['batch', 'readings', 'attempts', 'failed', 'last error', 'replayed'],
        list.map((d) => [d.id, d.readings, d.attempts, time(d.failedAt), d.lastError, d.replayedAt ? `${time(d.replayedAt)}: ${d.replayResult}` : null]),
        'No dead letters.',
      );
    });
  dl.command('replay')
    .description('send a dead-lettered batch again, once, as it was (same batch id and reading ids)')
    .argument('<id>', 'webhook id')
    .argument('<batch>', 'dead-lettered batch id')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, batch: string, o: { json?: boolean }) => {
      const r = await openSession(env).call<DeliveryResult>('POST', path(id, `/dead-letters/${encodeURIComponent(batch)}/replay`), { body: {} });
      if (o.json) {
        printJson(r);
        if (!r.ok) throw new Exit(EXIT.failure);
        return;
      }
      console.log(r.ok ? `Batch ${r.deliveryId} delivered (HTTP ${r.status}).` : `Batch ${r.deliveryId} failed again: ${r.error}`);
      if (!r.ok) throw new Exit(EXIT.failure);
    });
}
