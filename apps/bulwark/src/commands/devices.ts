import { type Command, Option } from 'commander';
import { type Certificate, type Device, certificateStatus, createClaimToken, ttlOption } from '../api.js';
import { collect, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { printFields, printJson, printTable, relative, time, warn } from '../output.js';

const STATES = ['manufactured', 'provisioned', 'active', 'suspended', 'decommissioned'];
/** The API's largest page. */
const PAGE = 1000;
const path = (id: string, rest = '') => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;

interface FleetCounts {
  total: number;
  byState: Record<string, number>;
  byConnectivity: Record<string, number>;
  byHealth: Record<string, number>;
  byAlertState: Record<string, number>;
  byModel: { value: string | null; count: number }[];
  byFirmware: { value: string | null; count: number }[];
}
/** `bulwark devices create | list | stats | show | suspend | resume | revoke | token`; enroll, batch and end of life (decommission, erase, transfer) live beside. */
export function addDeviceCommands(program: Command, env: Env): Command {
  const devices = program.command('devices').description('device inventory, lifecycle and enrollment');

  devices
    .command('create')
    .description('register a device (state manufactured); enroll it next with "bulwark devices enroll"')
    .argument('<id>', 'device id: letters, digits, ".", "_", ":" or "-"; it becomes the certificate name and the topic level')
    .option('--serial <serial>', 'serial number')
    .option('--model <model>', 'model name')
    .option('--hw-rev <rev>', 'hardware revision')
    .option('--owner <owner>', 'owner (team or customer)')
    .option('--location <location>', 'where the device is')
    .option('--tag <tag>', 'a tag (repeat for more)', collect)
    .option('--json', 'print the device as JSON')
    .action(async (id: string, opts: { serial?: string; model?: string; hwRev?: string; owner?: string; location?: string; tag?: string[]; json?: boolean }) => {
      const body = Object.fromEntries(
        Object.entries({
          id,
          serial: opts.serial,
          model: opts.model,
          hardwareRevision: opts.hwRev,
          owner: opts.owner,
          location: opts.location,
          tags: opts.tag,
        }).filter(([, v]) => v !== undefined),
      );
      const d = await openSession(env).call<Device>('POST', '/api/v1/devices', { body });
      if (opts.json) return printJson(d);
      console.log(`Created device ${d.id} (state ${d.state}).`);
      console.log(`Next: bulwark devices enroll ${d.id} --out ./${d.id}`);
    });

  devices
    .command('list')
    .description('devices by id, filtered; one page unless --all')
    .addOption(new Option('--state <state>', 'only devices in this lifecycle state').choices(STATES))
    .option('--model <model>', 'only this model')
    .option('--tag <tag>', 'only devices with this tag')
    .option('--firmware <version>', 'only devices running this firmware version')
    .option('--group <id>', 'only devices in this group (bulwark groups list)')
    .option('--security-below <n>', 'only devices whose security version is below this (or unknown): the ones a fix has not reached', positiveInt(2_147_483_647))
    .addOption(new Option('--online', 'only connected devices').conflicts('offline'))
    .option('--offline', 'only devices not connected')
    .option('--limit <n>', `at most this many devices (default 100; with --all, the page size, default ${PAGE})`, positiveInt(PAGE))
    .addOption(new Option('--sort <order>', 'id (default) or health: worst health score first').choices(['id', 'health']))
    .option('--all', 'follow the pages to the end')
    .option('--json', 'print a JSON array')
    .action(async (opts: { state?: string; model?: string; tag?: string; firmware?: string; group?: string; securityBelow?: number; online?: boolean; offline?: boolean; limit?: number; sort?: string; all?: boolean; json?: boolean }) => {
      const session = openSession(env);
      const limit = opts.limit ?? (opts.all ? PAGE : 100);
      const byHealth = opts.sort === 'health';
      const query = { state: opts.state, model: opts.model, tag: opts.tag, firmware: opts.firmware, group: opts.group, securityBelow: opts.securityBelow, online: opts.online ? true : opts.offline ? false : undefined, sort: opts.sort, limit };
      const list: Device[] = [];
      let after: string | undefined;
      let afterHealth: number | undefined;
      for (;;) {
        const page = await session.call<Device[]>('GET', '/api/v1/devices', { query: { ...query, after, ...(byHealth ? { afterHealth } : {}) } });
        list.push(...page);
        after = page.at(-1)?.id;
        afterHealth = page.at(-1)?.healthScore;
        if (!opts.all || page.length < limit || after === undefined) break;
      }
      if (opts.json) printJson(list);
      else
        printTable(
          ['id', 'state', 'model', 'firmware', 'online', 'last seen', 'health'],
          list.map((d) => [d.id, d.state, d.model, d.firmwareVersion, d.connectivity.online ? 'yes' : 'no', time(d.connectivity.lastSeenAt), d.healthScore]),
          'No devices match.',
        );
      if (!opts.all && list.length === limit) warn(`showing the first ${limit} devices; add --all for every page (or --limit up to ${PAGE})`);
    });

  devices
    .command('stats')
    .description('fleet counts in one call: by state, connectivity, health band, alert state, model and firmware version (exact, kept by the server as devices change)')
    .option('--json', 'print the counts as JSON')
    .action(async (opts: { json?: boolean }) => {
      const c = await openSession(env).call<FleetCounts>('GET', '/api/v1/devices/stats');
      if (opts.json) return printJson(c);
      const line = (counts: Record<string, number>) =>
        Object.entries(counts)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ');
      console.log(`${c.total} devices registered`);
      printFields([
        ['by state', line(c.byState)],
        ['connectivity', line(c.byConnectivity)],
        ['health', `${line(c.byHealth)} (good from 80, fair from 50)`],
        ['alerts', `${line(c.byAlertState)} (devices with open alerts not acknowledged, all acknowledged, none)`],
      ]);
      console.log('Decommissioned devices count only by state.');
      printTable(
        ['model', 'devices'],
        c.byModel.map((m) => [m.value ?? '(none)', m.count]),
        'No models.',
      );
      printTable(
        ['firmware', 'devices'],
        c.byFirmware.map((m) => [m.value ?? '(unknown)', m.count]),
        'No firmware versions.',
      );
    });

  devices
    .command('show')
    .description('one device: inventory, lifecycle, connectivity and certificates')
    .argument('<id>', 'device id')
    .option('--json', 'print the device with its certificates as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const session = openSession(env);
      const d = await session.call<Device>('GET', path(id));
      const certificates = await session.call<Certificate[]>('GET', path(id, '/certificates'));
      if (opts.json) return printJson({ ...d, certificates });
      const c = d.connectivity;
      console.log(`Device ${d.id}`);
      printFields([
        ['state', d.state],
        ['serial', d.serial],
        ['model', d.model],
        ['hardware rev', d.hardwareRevision],
        ['firmware', d.firmwareVersion],
        ['security ver', d.securityVersion],
        ['owner', d.owner],
        ['location', d.location],
        ['tags', d.tags.length > 0 ? d.tags.join(', ') : null],
        ['created', time(d.createdAt)],
        ['updated', time(d.updatedAt)],
        ['online', c.online ? `yes, since ${time(c.onlineSince)}` : 'no'],
        ['last seen', time(c.lastSeenAt)],
        ['connects', c.connectCount],
        ['last disconnect', c.lastDisconnectAt === null ? null : `${time(c.lastDisconnectAt)} (${c.lastDisconnectReason ?? 'no reason'})`],
      ]);
      console.log('Certificates (oldest first):');
      printTable(
        ['serial', 'not before', 'not after', 'first used', 'status'],
        certificates.map((x) => [x.serial, time(x.notBefore), time(x.notAfter), time(x.firstUsedAt), certificateStatus(x)]),
        '  none: enroll the device with "bulwark devices enroll"',
      );
    });

  const lifecycle = [
    ['suspend', 'end its session now and refuse connections until resumed', 'is suspended: its session was ended and it cannot connect until "bulwark devices resume"'],
    ['resume', 'let a suspended device connect again', 'may connect again'],
  ] as const;
  for (const [verb, description, outcome] of lifecycle) {
    devices
      .command(verb)
      .description(description)
      .argument('<id>', 'device id')
      .option('--json', 'print the device as JSON')
      .action(async (id: string, opts: { json?: boolean }) => {
        const d = await openSession(env).call<Device>('POST', path(id, `/${verb}`));
        if (opts.json) return printJson(d);
        console.log(`Device ${d.id} ${outcome} (state ${d.state}).`);
      });
  }

  devices
    .command('revoke')
    .description('revoke every certificate of a device: live sessions end now, new connections fail, the CRL lists them')
    .argument('<id>', 'device id')
    .option('--reason <reason>', 'why (kept with the certificates; letters, digits, spaces and ._:-)')
    .option('--json', 'print {deviceId, revoked} as JSON')
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const r = await openSession(env).call<{ deviceId: string; revoked: number }>('POST', path(id, '/revoke'), { body: opts.reason !== undefined ? { reason: opts.reason } : {} });
      if (opts.json) return printJson(r);
      console.log(`Revoked ${r.revoked} certificate${r.revoked === 1 ? '' : 's'} of ${r.deviceId}; its live sessions were ended and the CRL lists them.`);
      console.log(`To give it a new identity: bulwark devices enroll ${r.deviceId} --out DIR`);
    });

  devices
    .command('token')
    .description('create a one-time claim token the device uses to enroll; the token alone goes to standard output')
    .argument('<id>', 'device id')
    .addOption(ttlOption())
    .option('--json', 'print {deviceId, token, expiresAt} as JSON')
    .action(async (id: string, opts: { ttlSeconds?: number; json?: boolean }) => {
      const t = await createClaimToken(openSession(env), id, opts.ttlSeconds);
      if (opts.json) return printJson(t);
      console.log(t.token);
      console.error(`Claim token for ${t.deviceId}: works once, expires ${time(t.expiresAt)} (${relative(t.expiresAt)}). It is shown only now.`);
      console.error(`On the device: bulwark devices enroll ${t.deviceId} --out DIR --url URL --token TOKEN`);
    });

  return devices;
}
