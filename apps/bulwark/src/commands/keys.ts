import type { Command } from 'commander';
import { commaList, positiveInt } from '../args.js';
import { openSession } from '../client.js';
import type { Env } from '../credentials.js';
import { box, printJson, printTable, time } from '../output.js';

export interface ApiKey {
  readonly id: string;
  readonly principalId: string;
  readonly name: string;
  readonly scopes: string[] | null;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
}

interface Rotation {
  readonly previousMasterKeyId: string;
  readonly masterKeyId: string;
  readonly dataKeysRewrapped: number;
  readonly keySource?: 'file' | 'next' | 'token';
}

const keyStatus = (k: ApiKey, now = Date.now()) => (k.revokedAt !== null ? `revoked ${time(k.revokedAt)}` : k.expiresAt !== null && k.expiresAt <= now ? 'expired' : 'active');

/** `bulwark keys create | list | revoke | rotate-master | rotate-token-key`. */
export function addKeyCommands(program: Command, env: Env): void {
  const keys = program.command('keys').description('API keys (stored hashed on the server) and the master key');

  keys
    .command('create')
    .description('create an API key; its text is shown once')
    .requiredOption('--name <name>', 'what the key is for, e.g. ci or grafana')
    .option('--for <principalId>', 'principal that owns the key (default: yourself; others need keys:write)')
    .option('--scopes <list>', "comma-separated scopes, narrowing the principal's own")
    .option('--expires-in-days <n>', 'days until the key stops working', positiveInt(3650))
    .option('--json', 'print {key, apiKey} as JSON')
    .action(async (opts: { name: string; for?: string; scopes?: string; expiresInDays?: number; json?: boolean }) => {
      const body = {
        name: opts.name,
        ...(opts.for !== undefined ? { principalId: opts.for } : {}),
        ...(opts.scopes !== undefined ? { scopes: commaList(opts.scopes) } : {}),
        ...(opts.expiresInDays !== undefined ? { expiresInDays: opts.expiresInDays } : {}),
      };
      const created = await openSession(env).call<{ key: string; apiKey: ApiKey }>('POST', '/api/v1/keys', { body });
      if (opts.json) return printJson(created);
      const k = created.apiKey;
      console.log(`Created API key ${k.id} (${k.name}) for ${k.principalId}${k.expiresAt !== null ? `, expires ${time(k.expiresAt)}` : ''}.`);
      console.log(box('API KEY (shown once)', [created.key, '', 'This is the only time the key is shown: store it now.', 'The server keeps only a hash; a lost key cannot be recovered.', `If it leaks, run: bulwark keys revoke ${k.id}`]));
    });

  keys
    .command('list')
    .description("list API keys: your own, another principal's (--for), or every key (--all)")
    .option('--all', 'every key of every principal (needs keys:read)')
    .option('--for <principalId>', "one principal's keys (needs keys:read for others)")
    .option('--json', 'print a JSON array')
    .action(async (opts: { all?: boolean; for?: string; json?: boolean }) => {
      const list = await openSession(env).call<ApiKey[]>('GET', '/api/v1/keys', { query: { all: opts.all ? true : undefined, principalId: opts.for } });
      if (opts.json) return printJson(list);
      printTable(
        ['id', 'name', 'principal', 'scopes', 'created', 'expires', 'last used', 'status'],
        list.map((k) => [k.id, k.name, k.principalId, k.scopes?.join(', ') ?? "(all of the principal's)", time(k.createdAt), time(k.expiresAt), time(k.lastUsedAt), keyStatus(k)]),
        'No API keys.',
      );
    });

  keys
    .command('revoke')
    .description('revoke an API key; tokens issued from it stop working at once')
    .argument('<id>', 'key id (key_…)')
    .action(async (id: string) => {
      const k = await openSession(env).call<ApiKey>('POST', `/api/v1/keys/${encodeURIComponent(id)}/revoke`);
      console.log(`Revoked API key ${k.id} (${k.name}) of ${k.principalId}.`);
    });

  keys
    .command('rotate-master')
    .description('replace the master key and re-wrap every data key, without downtime (needs secrets:rotate)')
    .option('--json', 'print the rotation report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await openSession(env).call<Rotation>('POST', '/api/v1/system/master-key/rotate');
      if (opts.json) return printJson(r);
      console.log(`Master key rotated: ${r.previousMasterKeyId} → ${r.masterKeyId}; ${r.dataKeysRewrapped} data key${r.dataKeysRewrapped === 1 ? '' : 's'} re-wrapped.`);
      if (r.keySource === 'next') console.log('Now restart every node with this key (BULWARK_MASTER_KEY_NEXT) as BULWARK_MASTER_KEY, and without BULWARK_MASTER_KEY_NEXT.');
      else if (r.keySource === 'token') console.log('The new key was made inside the PKCS#11 token; the previous one stays there. Back up the token with its own tools.');
      else console.log('Back up the new master key file (master.key in the data directory) together with the database now.');
      console.log('Keep the previous key only as long as you keep database backups taken before this rotation.');
    });

  keys
    .command('rotate-token-key')
    .description('sign access tokens with a new key from now on; tokens of the previous key work until they expire (needs secrets:rotate)')
    .option('--json', 'print the keys whose tokens are accepted as JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await openSession(env).call<{ current: string; accepted: { id: string; acceptedUntil: number | null }[] }>('POST', '/api/v1/system/token-keys/rotate');
      if (opts.json) return printJson(r);
      console.log(`Access tokens are now signed with key ${r.current}; every node uses it within 30 s. Nobody is logged out:`);
      for (const k of r.accepted.filter((a) => a.acceptedUntil !== null)) console.log(`  tokens of key ${k.id} are accepted until ${time(k.acceptedUntil)}`);
    });
}
