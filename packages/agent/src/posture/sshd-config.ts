import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';

export type RootLogin = 'yes' | 'prohibit-password' | 'forced-commands-only' | 'no';

/** What the posture needs from sshd_config: the weakest setting that applies to some connection. */
export interface SshdSettings {
  readonly passwordAuth: boolean;
  readonly rootLogin: RootLogin;
  readonly ports: readonly number[];
}

/** One directive, and whether it sits in a Match block (it applies to some connections only). */
interface Directive {
  readonly key: string;
  readonly value: string;
  readonly inMatch: boolean;
}

const WEAKNESS: Readonly<Record<RootLogin, number>> = { no: 0, 'forced-commands-only': 1, 'prohibit-password': 2, yes: 3 };
const MAX_INCLUDE_DEPTH = 8;

function rootLoginOf(value: string): RootLogin | undefined {
  const v = value.toLowerCase();
  if (v === 'without-password') return 'prohibit-password';
  return v in WEAKNESS ? (v as RootLogin) : undefined;
}

/** `Keyword value` or `Keyword=value`; comments (a `#` opening a line or a word) dropped. */
function splitLine(line: string): [string, string] | undefined {
  const text = line.replace(/(^|\s)#.*$/, '').trim();
  const m = /^([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(text);
  return m?.[1] !== undefined && m[2] !== undefined ? [m[1].toLowerCase(), m[2].trim()] : undefined;
}

/** Paths an Include names: relative ones under sshd's directory, `*` and `?` in the file name, sorted as glob(3) does. */
async function includePaths(pattern: string, base: string): Promise<string[]> {
  const full = isAbsolute(pattern) ? pattern : join(base, pattern);
  const name = basename(full);
  if (!/[*?]/.test(name)) return [full];
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  const entries = await readdir(dirname(full)).catch(() => [] as string[]);
  return entries
    .filter((e) => re.test(e))
    .sort()
    .map((e) => join(dirname(full), e));
}

async function directives(text: string, base: string, inMatch: boolean, depth: number): Promise<Directive[]> {
  const out: Directive[] = [];
  let matched = inMatch;
  for (const line of text.split('\n')) {
    const d = splitLine(line);
    if (!d) continue;
    const [key, value] = d;
    if (key === 'match') {
      matched = true;
      continue;
    }
    if (key === 'include' && depth < MAX_INCLUDE_DEPTH) {
      for (const pattern of value.split(/\s+/)) {
        for (const path of await includePaths(pattern, base)) {
          const included = await readFile(path, 'utf8').catch(() => undefined);
          if (included !== undefined) out.push(...(await directives(included, base, matched, depth + 1)));
        }
      }
      continue;
    }
    out.push({ key, value, inMatch: matched });
  }
  return out;
}

/**
 * The settings of an sshd_config text (OpenSSH rules: keywords in any case, the first value
 * outside Match blocks wins, Include read in place). A Match block that weakens a setting
 * counts: password login on for some users is password login on.
 */
export async function parseSshdConfig(text: string, base = '/etc/ssh'): Promise<SshdSettings> {
  const all = await directives(text, base, false, 0);
  const global = (key: string) => all.find((d) => d.key === key && !d.inMatch)?.value;
  const anyMatch = (key: string) => all.filter((d) => d.key === key && d.inMatch).map((d) => d.value);
  const passwordAuth = (global('passwordauthentication') ?? 'yes').toLowerCase() !== 'no' || anyMatch('passwordauthentication').some((v) => v.toLowerCase() === 'yes');
  let rootLogin = rootLoginOf(global('permitrootlogin') ?? 'prohibit-password') ?? 'prohibit-password';
  for (const v of anyMatch('permitrootlogin')) {
    const r = rootLoginOf(v);
    if (r !== undefined && WEAKNESS[r] > WEAKNESS[rootLogin]) rootLogin = r;
  }
  const ports = all
    .filter((d) => d.key === 'port' && !d.inMatch)
    .map((d) => Number(d.value))
    .filter((p) => Number.isInteger(p) && p > 0 && p < 65536);
  return { passwordAuth, rootLogin, ports: ports.length > 0 ? ports : [22] };
}
