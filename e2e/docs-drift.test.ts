import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../packages/core/src/errors.js';
import { ROLES, ROLE_SCOPES, SCOPES } from '../packages/server/src/access/scopes.js';
import { ROOT, runCli } from './support/cli.js';

/**
 * The prose in docs/ and README.md against the code, for what can be checked mechanically:
 * the role and scope tables against packages/server/src/access/scopes.ts, every scope and
 * every BULWARK_ERR_* code named anywhere against the code, and every `bulwark <command>`
 * shown in code against the real command line. Each failure says what to fix, where.
 */

const SCOPES_TS = 'packages/server/src/access/scopes.ts';
const ERRORS_TS = 'packages/core/src/errors.ts';
/** The one page that must hold the role table and the scope table. */
const TABLES_PAGE = 'docs/guides/getting-started.md';

interface Doc {
  readonly path: string;
  readonly text: string;
}

function markdown(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) markdown(rel, out);
    else if (e.name.endsWith('.md')) out.push(rel);
  }
  return out;
}

const DOCS: readonly Doc[] = [...markdown('docs'), 'README.md'].sort().map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));

interface Table {
  readonly doc: string;
  readonly line: number;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const cells = (line: string) =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** Every markdown table of every page: header cells lower-cased, then the rows' cells. */
function tables(): Table[] {
  const out: Table[] = [];
  for (const doc of DOCS) {
    const lines = doc.text.split('\n');
    for (let i = 0; i + 1 < lines.length; i += 1) {
      if (!lines[i]!.trim().startsWith('|') || !/^\s*\|?\s*:?-{3,}/.test(lines[i + 1]!)) continue;
      const header = cells(lines[i]!).map((c) => c.toLowerCase());
      const rows: string[][] = [];
      let j = i + 2;
      for (; j < lines.length && lines[j]!.trim().startsWith('|'); j += 1) rows.push(cells(lines[j]!));
      out.push({ doc: doc.path, line: i + 1, header, rows });
      i = j;
    }
  }
  return out;
}

const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
const diff = (docs: readonly string[], code: readonly string[]) => ({
  missing: code.filter((s) => !docs.includes(s)),
  extra: docs.filter((s) => !code.includes(s)),
});
const list = (xs: readonly string[]) => xs.map((x) => `\`${x}\``).join(', ');

/** Server sources (not tests) that name a scope in quotes: the routes and handlers that need it. */
function scopeUsers(): Map<string, string[]> {
  const users = new Map<string, string[]>(SCOPES.map((s) => [s, []]));
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && rel !== SCOPES_TS && !rel.includes('/testing/')) {
        const text = readFileSync(join(ROOT, rel), 'utf8');
        for (const s of SCOPES) if (text.includes(`'${s}'`)) users.get(s)!.push(rel);
      }
    }
  };
  walk('packages/server/src');
  return users;
}

const UNUSED_WORDS = /reserved|no route|not used|unused|planned|not built/i;

describe('the docs agree with the code', () => {
  const all = tables();

  it(`every role table (| role | scopes |) lists exactly ROLE_SCOPES of ${SCOPES_TS}`, () => {
    const roleTables = all.filter((t) => t.header[0] === 'role' && t.header[1] === 'scopes');
    assert.ok(
      roleTables.some((t) => t.doc === TABLES_PAGE),
      `${TABLES_PAGE} must hold the role table ("| role | scopes |", one row per role; each scope in backticks)`,
    );
    const problems: string[] = [];
    for (const t of roleTables) {
      const where = `${t.doc}:${t.line}`;
      const seen = new Set<string>();
      for (const row of t.rows) {
        const role = ticked(row[0] ?? '')[0] ?? row[0] ?? '';
        if (!(ROLES as readonly string[]).includes(role)) {
          problems.push(`${where}: role \`${role}\` does not exist; the roles are ${list(ROLES)} (ROLES in ${SCOPES_TS})`);
          continue;
        }
        seen.add(role);
        const written = ticked(row[1] ?? '');
        const { missing, extra } = diff(written, ROLE_SCOPES[role as keyof typeof ROLE_SCOPES]);
        if (missing.length > 0) problems.push(`${where}: role \`${role}\` lacks ${list(missing)}, which ROLE_SCOPES.${role} in ${SCOPES_TS} grants: add them to the table`);
        if (extra.length > 0) problems.push(`${where}: role \`${role}\` lists ${list(extra)}, which ROLE_SCOPES.${role} in ${SCOPES_TS} does not grant: remove them from the table`);
      }
      const absent = ROLES.filter((r) => !seen.has(r));
      if (absent.length > 0) problems.push(`${where}: the role table has no row for ${list(absent)}`);
    }
    assert.deepEqual(problems, []);
  });

  it(`every scope table (| scope | allows |) has one row for each scope in SCOPES of ${SCOPES_TS}, and calls a scope unused only when it is`, () => {
    const scopeTables = all.filter((t) => t.header[0] === 'scope' && t.header[1] === 'allows');
    assert.ok(
      scopeTables.some((t) => t.doc === TABLES_PAGE),
      `${TABLES_PAGE} must hold the scope table ("| scope | allows |", the scopes of a row in backticks)`,
    );
    const users = scopeUsers();
    const problems: string[] = [];
    for (const t of scopeTables) {
      const where = `${t.doc}:${t.line}`;
      const written: string[] = [];
      for (const row of t.rows) {
        const scopes = ticked(row[0] ?? '');
        written.push(...scopes);
        for (const s of scopes) {
          const used = users.get(s);
          if (used === undefined) continue;
          const saysUnused = UNUSED_WORDS.test(row[1] ?? '');
          if (used.length > 0 && saysUnused) problems.push(`${where}: \`${s}\` is said to be unused, but ${used.join(', ')} require it: say what it allows`);
          if (used.length === 0 && !saysUnused) problems.push(`${where}: no server code requires \`${s}\`, but the table says what it allows: say that it is reserved`);
        }
      }
      const { missing, extra } = diff(written, SCOPES);
      if (missing.length > 0) problems.push(`${where}: no row for ${list(missing)} (in SCOPES of ${SCOPES_TS}): add one saying what it allows`);
      if (extra.length > 0) problems.push(`${where}: ${list(extra)} is not in SCOPES of ${SCOPES_TS}: remove the row or fix the name`);
      const twice = written.filter((s, i) => written.indexOf(s) !== i);
      if (twice.length > 0) problems.push(`${where}: ${list(twice)} has more than one row`);
    }
    assert.deepEqual(problems, []);
  });

  it(`every scope named anywhere in the docs exists in ${SCOPES_TS}`, () => {
    const namespaces = [...new Set(SCOPES.map((s) => s.split(':')[0]!))];
    const named = new RegExp(`\\b(?:${namespaces.join('|')}):[a-z]+\\b`, 'g');
    const problems: string[] = [];
    for (const doc of DOCS) {
      doc.text.split('\n').forEach((line, i) => {
        for (const m of line.matchAll(named)) {
          if (!(SCOPES as readonly string[]).includes(m[0])) problems.push(`${doc.path}:${i + 1}: \`${m[0]}\` is not a scope (SCOPES in ${SCOPES_TS})`);
        }
      });
    }
    assert.deepEqual(problems, []);
  });

  it(`every BULWARK_ERR_* code named in the docs exists in ${ERRORS_TS}`, () => {
    const problems: string[] = [];
    for (const doc of DOCS) {
      doc.text.split('\n').forEach((line, i) => {
        for (const m of line.matchAll(/\bBULWARK_ERR_[A-Z0-9_]+\b/g)) {
          if (!(m[0] in ERROR_CODES)) problems.push(`${doc.path}:${i + 1}: ${m[0]} is not an error code (ERROR_CODES in ${ERRORS_TS})`);
        }
      });
    }
    assert.deepEqual(problems, []);
  });

  it('every `bulwark <command> [<subcommand>]` shown in code in the guides, the references and the README exists', { timeout: 120_000 }, async (t) => {
    const mentions = new Map<string, string[]>();
    const pages = DOCS.filter((d) => d.path === 'README.md' || d.path.startsWith('docs/guides/') || d.path.startsWith('docs/reference/'));
    for (const doc of pages) {
      let fenced = false;
      doc.text.split('\n').forEach((line, i) => {
        if (line.trimStart().startsWith('```')) {
          fenced = !fenced;
          return;
        }
        const code = fenced ? [line] : [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
        for (const span of code) {
          for (const m of span.matchAll(/(?:^|[\s$("'|;&])(?:npx )?bulwark ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
            const words = m[2] === undefined ? m[1]! : `${m[1]} ${m[2]}`;
            const at = mentions.get(words) ?? [];
            at.push(`${doc.path}:${i + 1}`);
            mentions.set(words, at);
          }
        }
      });
    }
    assert.ok(mentions.size >= 20, `found only ${mentions.size} commands in the docs: the scan is broken`);
    const helpOf = async (args: readonly string[]): Promise<string[]> => {
      const r = await runCli(t, [...args, '--help']);
      assert.equal(r.code, 0, `bulwark ${args.join(' ')} --help: ${r.stderr}`);
      const section = r.stdout.split(/^Commands:$/m)[1] ?? '';
      return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    };
    const top = await helpOf([]);
    assert.ok(top.includes('start') && top.includes('devices'), `could not read the command list from bulwark --help: ${top.join(', ')}`);
    const firsts = [...new Set([...mentions.keys()].map((w) => w.split(' ')[0]!))].filter((c) => top.includes(c) && c !== 'start');
    // Four CLI processes at a time: all at once on two cores, each could outlast the runner's 60 s limit.
    const subs = new Map<string, string[]>();
    const queue = [...firsts];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let c = queue.shift(); c !== undefined; c = queue.shift()) subs.set(c, await helpOf([c]));
      }),
    );
    const problems: string[] = [];
    for (const [words, at] of mentions) {
      const [cmd, sub] = words.split(' ') as [string, string | undefined];
      if (!top.includes(cmd)) {
        problems.push(`\`bulwark ${cmd}\` (${at.join(', ')}) is not a command of apps/bulwark; the commands are ${top.join(', ')}`);
        continue;
      }
      const known = subs.get(cmd) ?? [];
      if (sub !== undefined && known.length > 0 && !known.includes(sub)) {
        problems.push(`\`bulwark ${cmd} ${sub}\` (${at.join(', ')}) is not a command of apps/bulwark; \`bulwark ${cmd}\` has ${known.join(', ')}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
