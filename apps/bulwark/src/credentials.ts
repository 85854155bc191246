import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError } from './errors.js';
import { warn } from './output.js';

/**
 * The CLI's saved login: server URL, API key and (as a cache) the last access token.
 * One JSON file, mode 0600 in a 0700 directory, like ~/.ssh: it holds a credential. The
 * default profile's login sits at the top level (the file's original format); other
 * profiles (`bulwark login --profile NAME`) under `profiles.NAME`, each with the same fields.
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

/** The part of the file a profile names: the top level for the default profile, `profiles[NAME]` for the others. */
export const DEFAULT_PROFILE = 'default';
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** BULWARK_PROFILE (set by --profile too), else the default profile. */
export function profileOf(env: Env): string {
  const name = env.BULWARK_PROFILE || DEFAULT_PROFILE;
  if (!PROFILE_NAME.test(name)) throw new CliError('BULWARK_CLI_USAGE', `profile "${name}": letters, digits, ".", "_" and "-" only, at most 64`, 2);
  return name;
}

interface CredentialsFile {
  url?: string;
  key?: string;
  token?: CachedToken;
  profiles?: Record<string, SavedCredentials>;
}

function readFile(path: string): CredentialsFile | undefined {
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
  const c = parsed as CredentialsFile | undefined;
  const hasDefault = typeof c?.url === 'string' && typeof c.key === 'string';
  const hasProfiles = typeof c?.profiles === 'object' && c.profiles !== null && !Array.isArray(c.profiles);
  if (c === undefined || (!hasDefault && !hasProfiles)) {
    throw new CliError('BULWARK_CLI_CREDENTIALS', `${path} is not a Bulwark credentials file; log in again with "bulwark login --url URL --key KEY"`);
  }
  return c;
}

function entry(c: Partial<SavedCredentials> | undefined): SavedCredentials | undefined {
  if (typeof c?.url !== 'string' || typeof c.key !== 'string') return undefined;
  const t = c.token;
  const token = t && typeof t.accessToken === 'string' && typeof t.expiresAt === 'number' ? { accessToken: t.accessToken, expiresAt: t.expiresAt } : undefined;
  return { url: c.url, key: c.key, ...(token ? { token } : {}) };
}

/** The saved login of one profile (default: the top level); undefined when the file or the profile is missing. */
export function readCredentials(path: string, profile: string = DEFAULT_PROFILE): SavedCredentials | undefined {
  const file = readFile(path);
  if (file === undefined) return undefined;
  return profile === DEFAULT_PROFILE ? entry(file) : entry(file.profiles?.[profile]);
}

/** The names of the profiles saved in the file (the default one first, when saved). */
export function savedProfiles(path: string): string[] {
  const file = readFile(path);
  if (file === undefined) return [];
  return [...(entry(file) ? [DEFAULT_PROFILE] : []), ...Object.keys(file.profiles ?? {}).filter((n) => entry(file.profiles?.[n]) !== undefined)];
}

/** Saves one profile's login, keeping the others; the file is replaced atomically, created 0600. */
export function writeCredentials(path: string, credentials: SavedCredentials, profile: string = DEFAULT_PROFILE): void {
  let file: CredentialsFile = {};
  try {
    file = readFile(path) ?? {};
  } catch (err) {
    // A file that is not ours is replaced only by a login to the default profile, as before profiles existed.
    if (profile !== DEFAULT_PROFILE) throw err;
  }
  const { profiles, ...top } = file;
  const next: CredentialsFile = profile === DEFAULT_PROFILE ? { ...credentials, ...(profiles ? { profiles } : {}) } : { ...top, profiles: { ...profiles, [profile]: credentials } };
  replaceFile(path, next);
}

function replaceFile(path: string, content: CredentialsFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError('BULWARK_CLI_CREDENTIALS', `cannot write ${path}: ${(err as Error).message}`);
  }
}

/** Forgets one profile's login; the file goes when nothing is left in it. Returns whether there was a login to forget. */
export function forgetCredentials(path: string, profile: string = DEFAULT_PROFILE): boolean {
  const file = readFile(path);
  if (file === undefined) return false;
  const { profiles = {}, ...top } = file;
  const { [profile]: gone, ...others } = profiles;
  const had = profile === DEFAULT_PROFILE ? entry(top) !== undefined : gone !== undefined;
  const keepTop = profile !== DEFAULT_PROFILE && entry(top) !== undefined;
  const keepOthers = Object.keys(others).length > 0;
  if (!keepTop && !keepOthers) removeCredentials(path);
  else if (had) replaceFile(path, { ...(keepTop ? top : {}), ...(keepOthers ? { profiles: others } : {}) });
  return had;
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
