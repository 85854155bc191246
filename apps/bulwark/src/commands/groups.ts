import { type Command, Option } from 'commander';
import type { Device } from '../api.js';
import { collect, duration, jsonObject, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { usageError } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

interface Group {
  readonly id: string;
  readonly description: string | null;
  readonly kind: 'static' | 'dynamic';
  readonly query: Record<string, unknown> | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly deviceCount?: number;
}

/** The API takes at most this many devices a request, and lists at most this many a page. */
const BATCH = 1000;
const path = (id: string, rest = '') => `/api/v1/groups/${encodeURIComponent(id)}${rest}`;

interface CriteriaOptions {
  state?: string[];
  model?: string[];
  hwRev?: string[];
  firmware?: string[];
  owner?: string[];
  location?: string[];
  tag?: string[];
  idPrefix?: string;
  securityBelow?: number;
  online?: boolean;
  offline?: boolean;
  offlineFor?: number;
  healthBelow?: number;
  alertState?: string[];
  query?: string;
}

/** The criteria flags shared by create and set-query. */
function withCriteria(c: Command): Command {
  return c
    .option('--state <state>', 'in this lifecycle state (repeat: any of them)', collect)
    .option('--model <model>', 'of this model (repeat: any)', collect)
    .option('--hw-rev <rev>', 'of this hardware revision (repeat: any)', collect)
    .option('--firmware <version>', 'running this firmware version (repeat: any)', collect)
    .option('--owner <owner>', 'of this owner (repeat: any)', collect)
    .option('--location <location>', 'at this location (repeat: any)', collect)
    .option('--tag <tag>', 'carrying this tag (repeat: every one)', collect)
    .option('--id-prefix <prefix>', 'whose id starts with this')
    .option('--security-below <n>', 'whose security version is below this, or unknown', positiveInt(2_147_483_647))
    .addOption(new Option('--online', 'connected now').conflicts(['offline', 'offlineFor']))
    .option('--offline', 'not connected now')
    .option('--offline-for <duration>', 'offline and last seen at least this long ago (90s, 30m, 2h, 7d)', duration)
    .option('--health-below <n>', 'whose health score is below this (80: fair or poor)', positiveInt(101))
    .option('--alert-state <state>', 'firing, acknowledged or none (repeat: any)', collect)
    .option('--query <json>', "the whole query as JSON instead of flags (the API's GroupQuery)");
}

function criteria(o: CriteriaOptions): Record<string, unknown> | undefined {
  const fromFlags = Object.fromEntries(
    Object.entries({
      state: o.state,
      model: o.model,
      hardwareRevision: o.hwRev,
      firmware: o.firmware,
      owner: o.owner,
      location: o.location,
      tags: o.tag,
      idPrefix: o.idPrefix,
      securityBelow: o.securityBelow,
      online: o.online ? true : o.offline ? false : undefined,
      offlineForMs: o.offlineFor,
      healthBelow: o.healthBelow,
      alertState: o.alertState,
    }).filter(([, v]) => v !== undefined),
  );
  if (o.query !== undefined) {
    if (Object.keys(fromFlags).length > 0) throw usageError('give the query either as --query JSON or as flags, not both');
    return jsonObject(o.query, '--query');
  }
  return Object.keys(fromFlags).length > 0 ? fromFlags : undefined;
}

const queryText = (q: Record<string, unknown> | null) =>
  q === null
    ? '-'
    : Object.entries(q)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : String(v)}`)
        .join(' ');

/** `bulwark groups create | list | show | devices | add | remove | set-query | delete`. */
export function addGroupCommands(program: Command, env: Env): void {
  const groups = program.command('groups').description('device groups: static (explicit members) or dynamic (a saved query over the registry); use one with "devices list --group"');

  withCriteria(
    groups
      .command('create')
      .description('create a group: dynamic when criteria are given (all must hold), static with --static (and --device members)')
      .argument('<id>', 'the group\'s name: letters, digits, ".", "_" or "-"')
      .option('--description <text>', 'what the group is for')
      .option('--static', 'a group of explicit members')
      .option('--device <id>', 'a first member of a static group (repeat)', collect)
      .option('--json', 'print the group as JSON'),
  ).action(async (id: string, o: CriteriaOptions & { description?: string; static?: boolean; device?: string[]; json?: boolean }) => {
    const query = criteria(o);
    if (o.static && query) throw usageError('a static group has members, not criteria: drop --static or the criteria flags');
    if (!o.static && !query) throw usageError('give criteria for a dynamic group (e.g. --model gw-b --location site-7), or --static for explicit members');
    if (o.device && !o.static) throw usageError('--device adds members to a static group: add --static');
    if ((o.device?.length ?? 0) > BATCH) throw usageError(`at most ${BATCH} devices at creation; add the rest with "bulwark groups add"`);
    const body = { id, kind: o.static ? 'static' : 'dynamic', ...(o.description ? { description: o.description } : {}), ...(query ? { query } : {}), ...(o.device ? { members: o.device } : {}) };
    const g = await openSession(env).call<Group>('POST', '/api/v1/groups', { body });
    if (o.json) return printJson(g);
    console.log(`Created ${g.kind} group ${g.id}${g.query ? ` (${queryText(g.query)})` : ''}.`);
    console.log(`Its devices: bulwark devices list --group ${g.id}`);
  });

  groups
    .command('list')
    .description('groups by id')
    .option('--json', 'print a JSON array')
    .action(async (o: { json?: boolean }) => {
      const session = openSession(env);
      const all: Group[] = [];
      for (let after: string | undefined; ;) {
        const page = await session.call<Group[]>('GET', '/api/v1/groups', { query: { limit: BATCH, after } });
        all.push(...page);
        if (page.length < BATCH) break;
        after = page.at(-1)?.id;
      }
      if (o.json) return printJson(all);
      printTable(
        ['id', 'kind', 'query', 'description'],
        all.map((g) => [g.id, g.kind, queryText(g.query), g.description]),
        'No groups yet: bulwark groups create --help',
      );
    });

  groups
    .command('show')
    .description('one group and how many devices are in it now')
    .argument('<id>', 'group id')
    .option('--json', 'print the group as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const g = await openSession(env).call<Group>('GET', path(id));
      if (o.json) return printJson(g);
      console.log(`Group ${g.id} (${g.kind})`);
      printFields([
        ['description', g.description],
        ['query', queryText(g.query)],
        ['devices now', g.deviceCount ?? null],
        ['created', `${time(g.createdAt)} by ${g.createdBy}`],
        ['updated', time(g.updatedAt)],
      ]);
    });

  groups
    .command('devices')
    .description('the devices in a group now (same as "devices list --group ID --all")')
    .argument('<id>', 'group id')
    .option('--json', 'print a JSON array')
    .action(async (id: string, o: { json?: boolean }) => {
      const session = openSession(env);
      const list: Device[] = [];
      for (let after: string | undefined; ;) {
        const page = await session.call<Device[]>('GET', '/api/v1/devices', { query: { group: id, limit: BATCH, after } });
        list.push(...page);
        if (page.length < BATCH) break;
        after = page.at(-1)?.id;
      }
      if (o.json) return printJson(list);
      printTable(
        ['id', 'state', 'model', 'firmware', 'online', 'health'],
        list.map((d) => [d.id, d.state, d.model, d.firmwareVersion, d.connectivity.online ? 'yes' : 'no', d.healthScore]),
        'No devices in the group.',
      );
    });

  for (const verb of ['add', 'remove'] as const) {
    groups
      .command(verb)
      .description(verb === 'add' ? 'add devices to a static group (each batch of 1000 all or none: an unknown id refuses its batch)' : 'remove devices from a static group')
      .argument('<id>', 'group id')
      .argument('<devices...>', 'device ids')
      .action(async (id: string, deviceIds: string[]) => {
        const session = openSession(env);
        let changed = 0;
        for (let i = 0; i < deviceIds.length; i += BATCH) {
          const r = await session.call<{ added?: number; removed?: number }>('POST', path(id, `/members/${verb}`), { body: { deviceIds: deviceIds.slice(i, i + BATCH) } });
          changed += r.added ?? r.removed ?? 0;
        }
        console.log(verb === 'add' ? `Added ${changed} devices to ${id} (the others were members already).` : `Removed ${changed} devices from ${id}.`);
      });
  }

  withCriteria(groups.command('set-query').description("replace a dynamic group's query (its devices change at once)").argument('<id>', 'group id')).action(async (id: string, o: CriteriaOptions) => {
    const query = criteria(o);
    if (!query) throw usageError('give the new criteria as flags or --query JSON');
    const g = await openSession(env).call<Group>('PATCH', path(id), { body: { query } });
    console.log(`Group ${g.id} now selects: ${queryText(g.query)}.`);
  });

  groups
    .command('delete')
    .description('delete a group (its devices stay as they are)')
    .argument('<id>', 'group id')
    .action(async (id: string) => {
      await openSession(env).call('DELETE', path(id));
      console.log(`Deleted group ${id}.`);
    });
}
