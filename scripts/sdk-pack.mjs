#!/usr/bin/env node
// prepack / postpack of the published SDK packages (@bulwark/protocol, @bulwark/agent);
// see docs/decisions/0032-sdk-entry-points.md.
//
// In the repository a package's `exports` point at its TypeScript sources (`./src/*.ts`),
// which every process runs through tsx. The tarball must run on plain Node, so `prepack`
// builds dist/ (tsc -b tsconfig.build.json) and writes the published package.json: each
// `./src/X.ts` export becomes `{ types: ./dist/X.d.ts, default: ./dist/X.js }`, and
// `scripts` and `devDependencies` are dropped. `postpack` puts the repository's
// package.json back byte for byte.
//
// The window between the two is guarded by a lock (a directory under the root
// node_modules/.cache) holding the original package.json and the pid of the npm process
// that packs: a second pack waits for the first, and a pack that died in between (its npm
// gone) is undone by the next one.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkgDir = process.cwd();
const manifestFile = join(pkgDir, 'package.json');
const name = JSON.parse(readFileSync(manifestFile, 'utf8')).name;
const lock = join(root, 'node_modules', '.cache', 'bulwark-pack', `${name.replace(/[@/]/g, '_')}.lock`);
const WAIT_MS = 300_000;

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

/** The npm process running this script (scripts run under `sh -c`), or the parent when there is no /proc. */
function npmPid() {
  let pid = process.ppid;
  for (let i = 0; i < 4 && pid > 1; i++) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (/(^|\/)npm( |\0|-cli\.js)/.test(cmd)) return pid;
      pid = Number(
        readFileSync(`/proc/${pid}/stat`, 'utf8')
          .replace(/^.*\) /, '')
          .split(' ')[1],
      );
    } catch {
      break;
    }
  }
  return process.ppid;
}

/** Puts back the package.json a pack left behind when the npm that held the lock is gone. */
function recover() {
  const owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  if (alive(owner)) return false;
  const saved = join(lock, 'package.json');
  if (existsSync(saved)) writeFileSync(manifestFile, readFileSync(saved));
  rmSync(lock, { recursive: true, force: true });
  return true;
}

async function acquire() {
  mkdirSync(dirname(lock), { recursive: true });
  const until = Date.now() + WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(npmPid()));
      return;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    try {
      if (recover()) continue;
    } catch {
      // the lock is being written or removed right now
    }
    if (Date.now() > until) throw new Error(`${name}: another pack holds ${lock}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Removes dist files whose source is gone (tsc -b never deletes an output). */
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    const base = relative(join(pkgDir, 'dist'), path).replace(/(\.d\.ts|\.js)$/, '');
    if (base !== relative(join(pkgDir, 'dist'), path) && !existsSync(join(pkgDir, 'src', `${base}.ts`))) rmSync(path);
  }
}

const published = (target) => {
  const m = /^\.\/src\/(.+)\.ts$/.exec(target);
  if (!m) throw new Error(`${name}: export target ${target} is not ./src/*.ts`);
  return { types: `./dist/${m[1]}.d.ts`, default: `./dist/${m[1]}.js` };
};

async function prepack() {
  await acquire();
  try {
    const original = readFileSync(manifestFile, 'utf8');
    const manifest = JSON.parse(original);
    if (typeof manifest.exports?.['.'] !== 'string') throw new Error(`${name}: package.json is not the repository's (exports["."] is not a ./src path)`);
    const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: pkgDir, stdio: 'inherit' });
    if (statSync(join(pkgDir, 'dist')).isDirectory()) prune(join(pkgDir, 'dist'));
    copyFileSync(join(root, 'LICENSE'), join(pkgDir, 'dist', 'LICENSE'));
    writeFileSync(join(lock, 'package.json'), original);
    const out = { ...manifest };
    out.exports = Object.fromEntries(Object.entries(manifest.exports).map(([k, v]) => [k, published(v)]));
    out.types = out.exports['.'].types;
    delete out.scripts;
    delete out.devDependencies;
    writeFileSync(manifestFile, `${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    rmSync(lock, { recursive: true, force: true });
    throw err;
  }
}

function postpack() {
  const saved = join(lock, 'package.json');
  if (!existsSync(saved)) return;
  writeFileSync(manifestFile, readFileSync(saved));
  rmSync(lock, { recursive: true, force: true });
}

const step = process.argv[2];
if (step === 'prepack') await prepack();
else if (step === 'postpack') postpack();
else throw new Error('usage: sdk-pack.mjs prepack|postpack');
