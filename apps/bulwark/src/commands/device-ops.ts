import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { jsonObject, positiveInt } from '../args.js';
import { type Session, openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, Exit, usageError } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

const path = (id: string, rest = '') => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const ENDED = ['succeeded', 'failed', 'rejected', 'expired'];
const POLL_MS = 500;

interface Twin {
  desired: { version: number; config: Record<string, unknown>; updatedAt: number; updatedBy: string } | null;
  reported: { version: number; status: string; config: Record<string, unknown>; reason: string | null; receivedAt: number } | null;
  inSync: boolean;
  driftSince: number | null;
  drifted: boolean;
}
interface CommandRecord {
  id: string;
  name: string;
  status: string;
  issuedAt: number;
  expiresAt: number;
  reason: string | null;
  detail: string | null;
  output: unknown;
}
interface LogEntry {
  seq: number;
  ts: number;
  level: string;
  msg: string;
}
interface Logs {
  stream: { streaming: boolean; until: number | null; received: number; dropped: number };
  entries: LogEntry[];
}

const compact = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

function printTwin(id: string, t: Twin): void {
  console.log(`Twin of ${id}`);
  printFields([
    ['desired', t.desired ? `v${t.desired.version} by ${t.desired.updatedBy} at ${time(t.desired.updatedAt)}` : null],
    ['desired config', compact(t.desired?.config)],
    ['reported', t.reported ? `v${t.reported.version} ${t.reported.status}${t.reported.reason ? ` (${t.reported.reason})` : ''} at ${time(t.reported.receivedAt)}` : null],
    ['reported config', compact(t.reported?.config)],
    ['in sync', t.inSync ? 'yes' : `no, since ${time(t.driftSince)}${t.drifted ? ' (DRIFTED)' : ''}`],
  ]);
}

async function waitForEnd(session: Session, id: string, cmdId: string, timeoutMs: number): Promise<CommandRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await session.call<CommandRecord>('GET', path(id, `/commands/${encodeURIComponent(cmdId)}`));
    if (ENDED.includes(c.status) || Date.now() >= deadline) return c;
    await sleep(POLL_MS);
  }
}

/** `bulwark devices twin | command | commands | health | logs`. */
export function addDeviceOpsCommands(devices: Command, env: Env): void {
  devices
    .command('twin')
    .description("show a device's desired and reported configuration and drift; --set changes the desired configuration")
    .argument('<id>', 'device id')
    .option('--set <file-or-json>', 'new desired configuration: a JSON object, or a file holding one')
    .option('--if-version <n>', 'only if the desired configuration is still at this version (else 409)', (v) => Number.parseInt(v, 10))
    .option('--json', 'print the twin as JSON')
    .action(async (id: string, opts: { set?: string; ifVersion?: number; json?: boolean }) => {
      const session = openSession(env);
      const twin =
        opts.set === undefined
          ? await session.call<Twin>('GET', path(id, '/twin'))
          : await session.call<Twin>('PUT', path(id, '/twin/desired'), { body: { config: jsonObject(opts.set, '--set'), ...(opts.ifVersion !== undefined ? { ifVersion: opts.ifVersion } : {}) } });
      if (opts.json) return printJson(twin);
      printTwin(id, twin);
    });

  devices
    .command('command')
    .description('send a command to a device (kept until it connects or --ttl passes); --wait follows it to its end')
    .argument('<id>', 'device id')
    .argument('<name>', 'command name, e.g. reboot')
    .option('--params <file-or-json>', 'parameters: a JSON object, or a file holding one')
    .option('--ttl <seconds>', "expire the command after this long (default: the server's commands.defaultTtlS)", positiveInt(604_800))
    .option('--if-offline <what>', '"queue" (default) or "refuse" (fail now when the device is not connected)')
    .option('--wait', 'wait until the device answers (exit 1 unless it succeeded)')
    .option('--timeout <seconds>', 'with --wait: give up after this long (default 60)', positiveInt(86_400))
    .option('--json', 'print the command as JSON')
    .action(async (id: string, name: string, opts: { params?: string; ttl?: number; ifOffline?: string; wait?: boolean; timeout?: number; json?: boolean }) => {
      if (opts.ifOffline !== undefined && !['queue', 'refuse'].includes(opts.ifOffline)) throw usageError('--if-offline must be queue or refuse');
      const session = openSession(env);
      const body = { params: opts.params ? jsonObject(opts.params, '--params') : {}, ...(opts.ttl ? { ttlS: opts.ttl } : {}), ...(opts.ifOffline ? { ifOffline: opts.ifOffline } : {}) };
      let c = await session.call<CommandRecord>('POST', path(id, `/commands/${encodeURIComponent(name)}`), { body });
      if (opts.wait) c = await waitForEnd(session, id, c.id, (opts.timeout ?? 60) * 1000);
      if (opts.json) printJson(c);
      else {
        console.log(`Command ${c.id} (${c.name}) to ${id}: ${c.status}${c.reason ? ` (${c.reason})` : ''}`);
        if (c.detail) console.log(c.detail);
        if (c.output !== null && c.output !== undefined) console.log(`output: ${JSON.stringify(c.output)}`);
      }
      if (opts.wait && c.status !== 'succeeded') {
        if (!ENDED.includes(c.status)) throw new CliError('BULWARK_CLI_TIMEOUT', `no answer from ${id} within ${opts.timeout ?? 60} s (still ${c.status})`);
        throw new Exit(EXIT.failure);
      }
    });

  devices
    .command('commands')
    .description("a device's commands, newest first")
    .argument('<id>', 'device id')
    .option('--limit <n>', 'at most this many (default 20)', positiveInt(1000))
    .option('--json', 'print a JSON array')
    .action(async (id: string, opts: { limit?: number; json?: boolean }) => {
      const list = await openSession(env).call<CommandRecord[]>('GET', path(id, '/commands'), { query: { limit: opts.limit ?? 20 } });
      if (opts.json) return printJson(list);
      printTable(
        ['id', 'name', 'status', 'issued', 'expires', 'reason'],
        list.map((c) => [c.id, c.name, c.status, time(c.issuedAt), time(c.expiresAt), c.reason]),
        'No commands.',
      );
    });

  devices
    .command('health')
    .description("a device's latest health report and whether it is in a restart loop")
    .argument('<id>', 'device id')
    .option('--json', 'print the health view as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const h = await openSession(env).call<{ latest: { receivedAt: number; report: Record<string, unknown> } | null; restartLoop: boolean }>('GET', path(id, '/health'));
      if (opts.json) return printJson(h);
      if (!h.latest) return console.log(`No health report from ${id} yet.`);
      const r = h.latest.report;
      console.log(`Health of ${id}${h.restartLoop ? ' — RESTART LOOP' : ''}`);
      printFields([['received', time(h.latest.receivedAt)], ...Object.entries(r).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)] as const)]);
    });

  devices
    .command('logs')
    .description("a device's streamed logs; --duration asks the device to stream for that long and follows them")
    .argument('<id>', 'device id')
    .addOption(new Option('--level <level>', 'this level and above').choices(LEVELS))
    .option('--duration <seconds>', 'stream for this long (at most 3600) and print entries as they arrive', positiveInt(3600))
    .option('--sample <fraction>', 'with --duration: keep this fraction of entries (0 < x ≤ 1)', Number.parseFloat)
    .option('--json', 'print the entries held now as a JSON array (starts the stream first with --duration)')
    .action(async (id: string, opts: { level?: string; duration?: number; sample?: number; json?: boolean }) => {
      const session = openSession(env);
      if (opts.duration !== undefined) {
        await session.call('POST', path(id, '/logs/stream'), { body: { level: opts.level ?? 'info', durationS: opts.duration, ...(opts.sample !== undefined ? { sample: opts.sample } : {}) } });
      }
      const read = (after: number) => session.call<Logs>('GET', path(id, '/logs'), { query: { level: opts.level, after } });
      let logs = await read(0);
      if (opts.json) return printJson(logs.entries);
      const print = (entries: LogEntry[]) => entries.forEach((e) => console.log(`${time(e.ts)} ${e.level.padEnd(5)} ${e.msg}`));
      print(logs.entries);
      if (opts.duration === undefined) {
        if (logs.entries.length === 0) console.log(`No log entries from ${id}${logs.stream.streaming ? ' yet' : '; start a stream with --duration'}.`);
        return;
      }
      const end = Date.now() + opts.duration * 1000;
      let last = logs.entries.at(-1)?.seq ?? 0;
      while (Date.now() < end) {
        await sleep(POLL_MS);
        logs = await read(last);
        print(logs.entries);
        last = logs.entries.at(-1)?.seq ?? last;
      }
    });
}
