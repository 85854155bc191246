import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * node --import tsx scripts/supply-chain.ts [--lockfile FILE] [--json]
 *
 * What CI checks of the dependencies without asking a registry (the one here answers no
 * advisory look-ups; `npm run audit` asks where one does):
 * - every package from the registry in package-lock.json is pinned by an integrity hash
 *   (SHA-512), and comes from a registry over HTTPS when the lockfile names where: no git,
 *   file, link or plain-HTTP sources;
 * - every package installed for running Bulwark (not a dev dependency) declares a licence
 *   on the allow-list below; the list of runtime licences is printed.
 * Exit code 0 when both hold, 1 with the problems otherwise.
 */

/** Licences a runtime dependency may carry (SPDX ids); an expression passes when one of its choices (OR) or all of its parts (AND) do. */
export const ALLOWED_LICENCES: ReadonlySet<string> = new Set(['MIT', 'MIT-0', 'ISC', 'Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', '0BSD', 'BlueOak-1.0.0', 'Unlicense', 'CC0-1.0', 'WTFPL', 'Python-2.0', 'Zlib']);

interface LockEntry {
  readonly version?: string;
  readonly resolved?: string;
  readonly integrity?: string;
  readonly license?: string;
  readonly dev?: boolean;
  readonly link?: boolean;
  readonly optional?: boolean;
}
interface Lockfile {
  readonly lockfileVersion?: number;
  readonly packages?: Readonly<Record<string, LockEntry>>;
}

export interface SupplyChainReport {
  readonly packages: number;
  readonly runtime: number;
  /** Runtime licences and how many packages carry each. */
  readonly licences: Readonly<Record<string, number>>;
  readonly problems: readonly string[];
}

/** Whether an SPDX expression (`MIT`, `(MIT OR Apache-2.0)`, `A AND B`) is allowed. */
export function licenceAllowed(expression: string): boolean {
  const text = expression.trim().replace(/^\((.*)\)$/, '$1');
  // One level of parentheses around the whole, no more: a nested expression is looked at by a person.
  if (/[()]/.test(text)) return false;
  if (/\sOR\s/.test(text)) return text.split(/\s+OR\s+/).some(licenceAllowed);
  if (/\sAND\s/.test(text)) return text.split(/\s+AND\s+/).every(licenceAllowed);
  return ALLOWED_LICENCES.has(text);
}

export function checkLockfile(lock: Lockfile): SupplyChainReport {
  const problems: string[] = [];
  const licences: Record<string, number> = {};
  let [packages, runtime] = [0, 0];
  if (lock.lockfileVersion === undefined || lock.lockfileVersion < 2 || lock.packages === undefined) {
    return { packages, runtime, licences, problems: ['package-lock.json: lockfileVersion 2 or 3 with a "packages" map is needed (npm 7 or later)'] };
  }
  for (const [path, entry] of Object.entries(lock.packages)) {
    // The root and this repository's own workspaces are not downloaded.
    if (path === '' || !path.includes('node_modules/')) continue;
    if (entry.link === true) {
      // A link to one of this repository's workspaces is how npm installs them; any other link is a local directory nobody pinned.
      if (entry.resolved === undefined || lock.packages[entry.resolved] === undefined || entry.resolved.includes('node_modules/')) {
        problems.push(`${path}: a link to ${entry.resolved ?? 'a local directory'}, not a package from the registry`);
      }
      continue;
    }
    packages += 1;
    if (entry.resolved !== undefined && !/^https:\/\/[^/]+\/.+\.tgz$/.test(entry.resolved)) problems.push(`${path}: resolved from ${entry.resolved}, not a registry tarball over HTTPS`);
    if (entry.integrity === undefined || !entry.integrity.split(/\s+/).some((h) => h.startsWith('sha512-'))) problems.push(`${path}: no SHA-512 integrity hash in the lockfile`);
    if (entry.dev === true) continue;
    runtime += 1;
    const licence = entry.license ?? '(none declared)';
    licences[licence] = (licences[licence] ?? 0) + 1;
    if (!licenceAllowed(licence)) problems.push(`${path}@${entry.version ?? '?'}: licence ${licence} is not on the allow-list (scripts/supply-chain.ts)`);
  }
  return { packages, runtime, licences, problems };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--lockfile');
  const file = at >= 0 ? (args[at + 1] ?? '') : join(process.cwd(), 'package-lock.json');
  const report = checkLockfile(JSON.parse(readFileSync(file, 'utf8')) as Lockfile);
  if (args.includes('--json')) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`${file}: ${report.packages} packages from the registry, ${report.runtime} of them at run time`);
    console.log('runtime licences:');
    for (const [licence, n] of Object.entries(report.licences).sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(4)}  ${licence}`);
    for (const p of report.problems) console.log(`problem: ${p}`);
    console.log(report.problems.length === 0 ? 'supply chain: OK' : `supply chain: ${report.problems.length} problems`);
  }
  process.exitCode = report.problems.length === 0 ? 0 : 1;
}
