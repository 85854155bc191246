import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { ALLOWED_LICENCES, checkLockfile, licenceAllowed } from '../scripts/supply-chain.js';
import { ROOT, tempDir } from './support/cli.js';

const run = promisify(execFile);
const script = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/supply-chain.ts'), ...args], { cwd: ROOT });

it('the lockfile pins every registry package by a SHA-512 hash, and runtime licences are on the allow-list', async () => {
  const { stdout } = await script();
  assert.match(stdout, /supply chain: OK/);
  assert.match(stdout, /runtime licences:\n\s+\d+\s+MIT/);
});

it('refuses an unpinned, a non-registry and a linked package, and a licence off the list', async (t) => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const runtime = Object.keys(lock.packages).find((k) => k.startsWith('node_modules/') && lock.packages[k]?.dev !== true && lock.packages[k]?.link !== true) ?? '';
  const dev = Object.keys(lock.packages).find((k) => k.startsWith('node_modules/') && lock.packages[k]?.dev === true) ?? '';
  const doctored = {
    ...lock,
    packages: {
      ...lock.packages,
      [runtime]: { ...lock.packages[runtime], license: 'SSPL-1.0' },
      [dev]: { ...lock.packages[dev], integrity: undefined },
      'node_modules/from-git': { version: '1.0.0', resolved: 'git+ssh://git@example.com/x.git#abc', integrity: 'sha512-AAAA', license: 'MIT' },
      'node_modules/plain-http': { version: '1.0.0', resolved: 'http://registry.example.com/p/-/p-1.0.0.tgz', integrity: 'sha1-AAAA', license: 'MIT' },
      'node_modules/local': { resolved: '../somewhere', link: true },
    },
  };
  const problems = checkLockfile(doctored as Parameters<typeof checkLockfile>[0]).problems.join('\n');
  assert.match(problems, new RegExp(`${runtime}@.*: licence SSPL-1.0 is not on the allow-list`));
  assert.match(problems, new RegExp(`${dev}: no SHA-512 integrity hash`));
  assert.match(problems, /from-git: resolved from git\+ssh/);
  assert.match(problems, /plain-http: resolved from http:\/\/.*not a registry tarball over HTTPS/);
  assert.match(problems, /plain-http: no SHA-512 integrity hash/);
  assert.match(problems, /local: a link to \.\.\/somewhere/);

  const file = join(tempDir(t), 'package-lock.json');
  writeFileSync(file, JSON.stringify(doctored));
  await assert.rejects(script('--lockfile', file), (err: { code?: number; stdout?: string }) => err.code === 1 && /supply chain: 6 problems/.test(err.stdout ?? ''));
});

it('reads SPDX expressions', () => {
  assert.ok(ALLOWED_LICENCES.has('MIT'));
  assert.equal(licenceAllowed('(MIT OR WTFPL)'), true);
  assert.equal(licenceAllowed('(GPL-3.0-only OR MIT)'), true, 'one allowed choice is enough');
  assert.equal(licenceAllowed('MIT AND GPL-3.0-only'), false, 'every part of an AND must be allowed');
  assert.equal(licenceAllowed('(none declared)'), false);
  assert.equal(licenceAllowed('GPL-3.0-only AND (MIT OR Apache-2.0)'), false, 'a nested expression is not guessed at');
});
