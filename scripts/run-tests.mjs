#!/usr/bin/env node
// Finds every *.test.ts under packages/, apps/, e2e/ and scripts/ and runs them with node's test
// runner through tsx. Node 20 does not expand globs in `--test`, hence this script.
// Extra arguments are passed on as file filters: `npm run test:only -- audit` runs the
// test files whose path contains "audit".
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (entry.name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

/**
 * The files that take longest, slowest first (measured on the 2-core CI machine, a minute to
 * four each). The runner starts files in the order given, two at a time: these go first, so
 * that the run does not end with one long file running alone; the rest follow in path order.
 * A name that no longer exists is ignored; a slow file missing here only makes the run longer.
 */
const SLOW_FIRST = [
  'e2e/cluster-failover.test.ts',
  'e2e/devices.test.ts',
  'packages/agent/src/agent-ota.test.ts',
  'e2e/dashboard.test.ts',
  'e2e/devices-batch.test.ts',
  'e2e/device-ops-cli.test.ts',
  'e2e/docs-drift.test.ts',
  'e2e/alerts-cli.test.ts',
  'e2e/firmware-cli.test.ts',
  'e2e/devices-tls.test.ts',
  'e2e/cli.test.ts',
  'e2e/sdk-package.test.ts',
  'e2e/cli-errors.test.ts',
  'packages/server/src/store/postgres/postgres-store.test.ts',
  'e2e/simulate-rollout.test.ts',
  'e2e/schemas-dlq-cli.test.ts',
  'e2e/fleet-reconnect.test.ts',
  'e2e/store-migrate.test.ts',
  'e2e/simulate-cli.test.ts',
  'e2e/dashboard-alerts.test.ts',
  'e2e/dashboard-lifecycle.test.ts',
  'e2e/dashboard-posture.test.ts',
  'e2e/telemetry-stream.test.ts',
];
const rank = new Map(SLOW_FIRST.map((f, i) => [f, i]));
const order = (f) => rank.get(f) ?? SLOW_FIRST.length;

const files = ['packages', 'apps', 'e2e', 'scripts']
  .flatMap((d) => walk(join(root, d), []))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
  .sort((a, b) => order(a) - order(b));

if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
