#!/usr/bin/env node
// Runs the static checks of `npm test` side by side: lint, typecheck, format:check and
// docs:check (each the package.json script of that name). None of them writes anything, so
// they cannot disturb one another. One check per core at a time, longest first: on two cores
// the type-aware lint (about half of the time) runs beside the other three in turn, rather
// than four processes fighting over two cores. Each check's output is printed as one block
// when it ends (never interleaved), and the run fails when any check fails, after all ended.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const checks = process.argv.length > 2 ? process.argv.slice(2) : ['lint', 'typecheck', 'format:check', 'docs:check'];
const lanes = Math.max(2, availableParallelism());

function run(name) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(npm, ['run', '-s', name], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    child.stdout.on('data', (chunk) => output.push(chunk));
    child.stderr.on('data', (chunk) => output.push(chunk));
    const done = (code, why) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const text = Buffer.concat(output).toString();
      process.stdout.write(`\n> ${name}: ${code === 0 ? 'passed' : `FAILED (${why})`} in ${seconds} s\n${text}${text === '' || text.endsWith('\n') ? '' : '\n'}`);
      resolve(code === 0);
    };
    child.once('error', (err) => done(1, err.message));
    child.once('close', (code, signal) => done(code ?? 1, signal ? `signal ${signal}` : `exit code ${code}`));
  });
}

const results = new Map();
const queue = [...checks];
await Promise.all(
  Array.from({ length: Math.min(lanes, checks.length) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) results.set(name, await run(name));
  }),
);
const failed = checks.filter((name) => !results.get(name));
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\nall passed: ${checks.join(', ')}`);
