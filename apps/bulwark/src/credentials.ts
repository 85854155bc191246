import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError } from './errors.js';
import { warn } from './output.js';

/**
 * The CLI's saved login: server URL, API key and (as a cache) the last access token.
 * One JSON file, mode 0600 in a 0700 directory, like ~/.ssh: it holds a credential.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export interface CachedToken {
  readonly accessToken: string;
  readonly expiresAt: number;
}

export interface SavedCredentials {
  readonly url: string;
  readonly key: string;
  readonly token?: CachedToken;
}

/** BULWARK_CLI_CONFIG, else $XDG_CONFIG_HOME/bulwark/credentials.json, else ~/.config/bulwark/credentials.json. */
export function credentialsPath(env: Env): string {
  if (env.BULWARK_CLI_CONFIG) return resolve(env.BULWARK_CLI_CONFIG);
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config');
  return join(base, 'bulwark', 'credentials.json');
}

export function readCredentials(path: string): SavedCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError('BULWARK_CLI_CREDENTIALS', `cannot read ${path}: ${(err as Error).message}`);
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) warn(`${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${path}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const c = parsed as Partial<SavedCredentials> | undefined;
  if (typeof c?.url !== 'string' || typeof c.key !== 'string') {
    throw new CliError('BULWARK_CLI_CREDENTIALS', `${path} is not a Bulwark credentials file; log in again with "bulwark login --url URL --key KEY"`);
  }
  const t = c.token;
  const token = t && typeof t.accessToken === 'string' && typeof t.expiresAt === 'number' ? { accessToken: t.accessToken, expiresAt: t.expiresAt } : undefined;
  return { url: c.url, key: c.key, ...(token ? { token } : {}) };
}

/** Replaces the file atomically; the new file is created 0600 and never exists with wider rights. */
export function writeCredentials(path: string, credentials: SavedCredentials): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError('BULWARK_CLI_CREDENTIALS', `cannot write ${path}: ${(err as Error).message}`);
  }
}

/** Returns whether there was a file to remove. */
export function removeCredentials(path: string): boolean {
  try {
    rmSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CliError('BULWARK_CLI_CREDENTIALS', `cannot remove ${path}: ${(err as Error).message}`);
  }
}
