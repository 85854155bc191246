import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Session, exchangeKey, isLoopbackUrl, normalizeUrl, openSession, send } from '../client.js';
import { DEFAULT_PROFILE, type Env, credentialsPath, forgetCredentials, profileOf, writeCredentials } from '../credentials.js';
import { usageError } from '../errors.js';
import { printFields, printJson, relative, time, warn } from '../output.js';
import type { Principal } from './users.js';

export interface WhoAmI {
  readonly principal: Principal;
  readonly keyId: string;
  readonly scopes: string[];
  readonly tokenExpiresAt: number;
}

export const whoami = (session: Session) => session.call<WhoAmI>('GET', '/api/v1/auth/whoami');

/** `bulwark login`, `logout` and `whoami`. */
export function addAuthCommands(program: Command, env: Env): void {
  program
    .command('login')
    .description('check an API key against a server and save both for the next commands')
    .requiredOption('--url <url>', 'server URL, as printed by "bulwark start"')
    .option('--key <key>', 'API key (bwk.…); "-" reads it from standard input; default: $BULWARK_KEY')
    .action(async (opts: { url: string; key?: string }) => {
      const url = normalizeUrl(opts.url);
      const key = readKey(opts.key ?? env.BULWARK_KEY);
      if (!isLoopbackUrl(url) && url.startsWith('http:')) warn(`${url} is plain HTTP on a non-loopback address: the key and tokens cross the network unencrypted`);
      const grant = await exchangeKey(url, key);
      const me = await send<WhoAmI>(url, 'GET', '/api/v1/auth/whoami', { token: grant.accessToken });
      const path = credentialsPath(env);
      const profile = profileOf(env);
      writeCredentials(path, { url, key, token: grant }, profile);
      console.log(`Logged in to ${url} as ${describe(me)}.`);
      const named = profile === DEFAULT_PROFILE ? '' : ` as profile "${profile}" (use it with --profile ${profile} or BULWARK_PROFILE=${profile})`;
      console.log(`Credentials saved to ${path}${named} (readable by you only).`);
    });

  program
    .command('logout')
    .description('forget the saved login of the profile (--profile; the default one without); the key itself stays valid: revoke it with "bulwark keys revoke"')
    .action(() => {
      const path = credentialsPath(env);
      const profile = profileOf(env);
      const which = profile === DEFAULT_PROFILE ? '' : ` of profile "${profile}"`;
      console.log(forgetCredentials(path, profile) ? `Forgot the login${which} in ${path}.` : `Not logged in${which} (nothing saved in ${path}).`);
    });

  program
    .command('whoami')
    .description('show who the saved login (or BULWARK_KEY) is, and what it may do')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const session = openSession(env);
      const me = await whoami(session);
      if (opts.json) return printJson({ ...me, url: session.url, profile: profileOf(env) });
      console.log(describe(me));
      printFields([
        ['server', session.url],
        ['profile', profileOf(env)],
        ['key', me.keyId],
        ['scopes', me.scopes.join(', ')],
        ['token', `expires ${time(me.tokenExpiresAt)} (${relative(me.tokenExpiresAt)})`],
      ]);
    });
}

function describe(me: WhoAmI): string {
  const p = me.principal;
  return `${p.name} (${p.kind} ${p.id}${p.role ? `, role ${p.role}` : ''})`;
}

function readKey(value: string | undefined): string {
  if (value === undefined || value === '') throw usageError('give the API key with --key KEY, --key - (standard input) or BULWARK_KEY');
  if (value !== '-') return value;
  const text = readFileSync(0, 'utf8').trim();
  if (text === '') throw usageError('--key -: standard input was empty');
  return text;
}
