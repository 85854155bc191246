import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { commaList } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { CliError, EXIT, usageError } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

export interface Principal {
  readonly id: string;
  readonly kind: 'user' | 'service';
  readonly name: string;
  readonly role: string | null;
  readonly scopes: string[];
  /** Limited to these device groups; null: the whole fleet. */
  readonly deviceGroups: string[] | null;
  readonly createdAt: number;
  readonly disabledAt: number | null;
}

/** The roles the server defines (DESIGN.md §5); the server checks them again. */
const ROLES = ['admin', 'operator', 'viewer'];

const status = (p: Principal) => (p.disabledAt === null ? 'enabled' : `disabled ${time(p.disabledAt)}`);
const rights = (p: Principal) => `${p.role !== null ? `role ${p.role}` : p.scopes.join(', ')}${p.deviceGroups ? `, limited to device groups ${p.deviceGroups.join(', ')}` : ''}`;
const reach = (p: Principal) => (p.deviceGroups === null ? 'the whole fleet' : `device groups ${p.deviceGroups.join(', ')}`);

/** `bulwark users create | list | show | set-device-groups | disable | enable | recover`. */
export function addUserCommands(program: Command, env: Env): void {
  const users = program.command('users').description('people (with a role) and service accounts (with scopes)');

  users
    .command('create')
    .description('create a user with a role, or with --service a service account with scopes')
    .argument('<name>', 'unique name: letters, digits, . _ @ -')
    .addOption(new Option('--role <role>', 'role of a user (default: viewer)').choices(ROLES))
    .option('--service', 'create a service account instead of a user')
    .option('--scopes <list>', 'comma-separated scopes of a service account, e.g. devices:read,telemetry:read')
    .option('--device-groups <list>', 'comma-separated device groups to limit it to (default: the whole fleet)')
    .option('--json', 'print the created principal as JSON')
    .action(async (name: string, opts: { role?: string; service?: boolean; scopes?: string; deviceGroups?: string; json?: boolean }) => {
      let body: Record<string, unknown>;
      if (opts.service) {
        if (opts.role !== undefined) throw usageError('a service account has scopes, not a role: drop --role');
        const scopes = commaList(opts.scopes ?? '');
        if (scopes.length === 0) throw usageError('a service account needs --scopes, e.g. --scopes devices:read,telemetry:read');
        body = { name, kind: 'service', scopes };
      } else {
        if (opts.scopes !== undefined) throw usageError('a user has a role, not scopes: use --role, or --service for a service account');
        body = { name, kind: 'user', role: opts.role ?? 'viewer' };
      }
      if (opts.deviceGroups !== undefined) {
        const groups = commaList(opts.deviceGroups);
        if (groups.length === 0) throw usageError('--device-groups needs at least one group id');
        body.deviceGroups = groups;
      }
      const p = await openSession(env).call<Principal>('POST', '/api/v1/users', { body });
      if (opts.json) return printJson(p);
      console.log(`Created ${p.kind} ${p.name} (${p.id}) with ${rights(p)}.`);
      console.log(`Give it an API key with: bulwark keys create --name <name> --for ${p.id}`);
    });

  users
    .command('list')
    .description('list users and service accounts')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }) => {
      const list = await openSession(env).call<Principal[]>('GET', '/api/v1/users');
      if (opts.json) return printJson(list);
      printTable(
        ['id', 'name', 'kind', 'role / scopes', 'reaches', 'created', 'status'],
        list.map((p) => [p.id, p.name, p.kind, p.role ?? p.scopes.join(', '), reach(p), time(p.createdAt), status(p)]),
        'No users.',
      );
    });

  users
    .command('show')
    .description('show one user or service account')
    .argument('<id>', 'principal id (usr_… or svc_…)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const p = await openSession(env).call<Principal>('GET', `/api/v1/users/${encodeURIComponent(id)}`);
      if (opts.json) return printJson(p);
      printFields(
        [
          ['id', p.id],
          ['name', p.name],
          ['kind', p.kind],
          ['role', p.role],
          ['scopes', p.scopes.join(', ')],
          ['reaches', reach(p)],
          ['created', time(p.createdAt)],
          ['status', status(p)],
        ],
        '',
      );
    });

  users
    .command('set-device-groups')
    .description('limit a principal to device groups (its tokens follow at once), or with --all give it the whole fleet again')
    .argument('<id>', 'principal id')
    .option('--groups <list>', 'comma-separated device group ids')
    .option('--all', 'lift the limit: the whole fleet')
    .option('--json', 'print the principal as JSON')
    .action(async (id: string, opts: { groups?: string; all?: boolean; json?: boolean }) => {
      if ((opts.groups === undefined) === (opts.all !== true)) throw usageError('give --groups A,B or --all');
      const groups = opts.groups === undefined ? null : commaList(opts.groups);
      if (groups !== null && groups.length === 0) throw usageError('--groups needs at least one group id');
      const p = await openSession(env).call<Principal>('PUT', `/api/v1/users/${encodeURIComponent(id)}/device-groups`, { body: { deviceGroups: groups } });
      if (opts.json) return printJson(p);
      console.log(`${p.kind === 'user' ? 'User' : 'Service account'} ${p.name} (${p.id}) now reaches ${reach(p)}.`);
    });

  for (const verb of ['disable', 'enable'] as const) {
    users
      .command(verb)
      .description(verb === 'disable' ? 'disable a principal: its keys and tokens stop working at once' : 'enable a disabled principal again')
      .argument('<id>', 'principal id')
      .action(async (id: string) => {
        const p = await openSession(env).call<Principal>('POST', `/api/v1/users/${encodeURIComponent(id)}/${verb}`);
        console.log(`${p.kind === 'user' ? 'User' : 'Service account'} ${p.name} (${p.id}) is now ${status(p)}.`);
      });
  }

  users
    .command('recover')
    .description("break-glass, on the server's machine: re-enable the admin user (or create it) and write a new admin key to a 0600 file; works on the store directly, no server or API key needed, and is audited")
    .option('--data <dir>', 'the data directory the server runs with (default: $BULWARK_DATA_DIR or ./.bulwark)')
    .option('--store <url>', 'the store, when it is not the SQLite file in the data directory: postgres://user@host:port/db (default: $BULWARK_STORE)')
    .option('--config <file>', 'the JSON config file the server runs with (default: $BULWARK_CONFIG)')
    .option('--name <name>', 'the admin user to recover', 'admin')
    .option('--key-file <path>', 'where to write the new key (default: a new admin-recovery-<time>.key in the data directory)')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { data?: string; store?: string; config?: string; name: string; keyFile?: string; json?: boolean }) => {
      const server = await import('@bulwark/server');
      const flags: Record<string, unknown> = {};
      if (opts.data !== undefined) flags.dataDir = opts.data;
      if (opts.store !== undefined) flags.store = opts.store;
      const configFile = opts.config ?? (env.BULWARK_CONFIG || undefined);
      const file = configFile === undefined ? undefined : readConfigFile(configFile);
      const config = server.loadConfig({ flags, env, ...(file !== undefined && configFile !== undefined ? { file, fileName: configFile } : {}) });
      const report = await server.recoverAdmin(config, { name: opts.name, ...(opts.keyFile !== undefined ? { keyFile: opts.keyFile } : {}) });
      if (opts.json) return printJson(report);
      const how = report.created ? 'created' : report.reenabled ? 're-enabled' : 'already enabled';
      console.log(`Admin user ${report.principal.name} (${report.principal.id}) is ${how}; a new admin key (${report.keyId}) is in ${report.keyFile} (mode 0600).`);
      console.log(`Use it with: bulwark login --url <server> --key "$(cat ${report.keyFile})"`);
      console.log('Then revoke the keys you no longer trust, and delete the file. The recovery is in the audit log as user.recover.');
    });
}

function readConfigFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('BULWARK_ERR_CONFIG_INVALID', `${path}: ${err instanceof SyntaxError ? 'not valid JSON' : 'cannot be read'}: ${(err as Error).message}`, EXIT.usage);
  }
}
