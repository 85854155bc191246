import { Option, type Command } from 'commander';
import { commaList } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { usageError } from '../errors.js';
import { printFields, printJson, printTable, time } from '../output.js';

export interface Principal {
  readonly id: string;
  readonly kind: 'user' | 'service';
  readonly name: string;
  readonly role: string | null;
  readonly scopes: string[];
  readonly createdAt: number;
  readonly disabledAt: number | null;
}

/** The roles the server defines (DESIGN.md §5); the server checks them again. */
const ROLES = ['admin', 'operator', 'viewer'];

const status = (p: Principal) => (p.disabledAt === null ? 'enabled' : `disabled ${time(p.disabledAt)}`);
const rights = (p: Principal) => (p.role !== null ? `role ${p.role}` : p.scopes.join(', '));

/** `bulwark users create | list | show | disable | enable`. */
export function addUserCommands(program: Command, env: Env): void {
  const users = program.command('users').description('people (with a role) and service accounts (with scopes)');

  users.command('create')
    .description('create a user with a role, or with --service a service account with scopes')
    .argument('<name>', 'unique name: letters, digits, . _ @ -')
    .addOption(new Option('--role <role>', 'role of a user (default: viewer)').choices(ROLES))
    .option('--service', 'create a service account instead of a user')
    .option('--scopes <list>', 'comma-separated scopes of a service account, e.g. devices:read,telemetry:read')
    .option('--json', 'print the created principal as JSON')
    .action(async (name: string, opts: { role?: string; service?: boolean; scopes?: string; json?: boolean }) => {
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
      const p = await openSession(env).call<Principal>('POST', '/api/v1/users', { body });
      if (opts.json) return printJson(p);
      console.log(`Created ${p.kind} ${p.name} (${p.id}) with ${rights(p)}.`);
      console.log(`Give it an API key with: bulwark keys create --name <name> --for ${p.id}`);
    });

  users.command('list')
    .description('list users and service accounts')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }) => {
      const list = await openSession(env).call<Principal[]>('GET', '/api/v1/users');
      if (opts.json) return printJson(list);
      printTable(['id', 'name', 'kind', 'role / scopes', 'created', 'status'],
        list.map((p) => [p.id, p.name, p.kind, p.role ?? p.scopes.join(', '), time(p.createdAt), status(p)]), 'No users.');
    });

  users.command('show')
    .description('show one user or service account')
    .argument('<id>', 'principal id (usr_… or svc_…)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const p = await openSession(env).call<Principal>('GET', `/api/v1/users/${encodeURIComponent(id)}`);
      if (opts.json) return printJson(p);
      printFields([['id', p.id], ['name', p.name], ['kind', p.kind], ['role', p.role], ['scopes', p.scopes.join(', ')], ['created', time(p.createdAt)], ['status', status(p)]], '');
    });

  for (const verb of ['disable', 'enable'] as const) {
    users.command(verb)
      .description(verb === 'disable' ? 'disable a principal: its keys and tokens stop working at once' : 'enable a disabled principal again')
      .argument('<id>', 'principal id')
      .action(async (id: string) => {
        const p = await openSession(env).call<Principal>('POST', `/api/v1/users/${encodeURIComponent(id)}/${verb}`);
        console.log(`${p.kind === 'user' ? 'User' : 'Service account'} ${p.name} (${p.id}) is now ${status(p)}.`);
      });
  }
}
