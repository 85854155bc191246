import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildServer, loadConfig } from '../packages/server/src/index.js';
import { newAdminKey } from '../packages/server/src/testing/harness.js';
import { progress, removeDir, tempDir } from './children.js';

/**
 * npm run bench:auth -- [--rounds N]
 * What a failed key exchange costs, for a key id that exists and for one that does not: if
 * they differ, the answer time tells a guesser which key ids exist. The real server on a
 * temporary data directory, over HTTP on 127.0.0.1; rounds alternate between the two so
 * that the machine's noise falls on both alike. Prints medians and their ratio, and saves
 * bench/results/auth-failure.json.
 */
const { values: opt } = parseArgs({ options: { rounds: { type: 'string', default: '40' } } });
const rounds = Number(opt.rounds);
if (!Number.isInteger(rounds) || rounds < 4 || rounds > 10_000) throw new Error('--rounds must be an integer from 4 to 10000');

const dataDir = tempDir('bulwark-bench-auth-');
const adminKey = newAdminKey();
const config = loadConfig({
  file: { dataDir, http: { port: 0 }, mqtt: { enabled: false }, deviceHttp: { enabled: false }, log: { level: 'silent' }, rateLimit: { perAddressPerMinute: 1_000_000 }, auth: { lockoutThreshold: 10_000, keyLockoutThreshold: 10_000 } },
  fileName: 'bench',
  env: { BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey },
});
const server = await buildServer(config);
const url = await server.start();
try {
  const attempt = async (key: string): Promise<number> => {
    const started = process.hrtime.bigint();
    const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    await res.text();
    if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const known = `${adminKey.slice(0, -4)}AAAA`;
  const unknown = `bwk.key_does_not_exist.${adminKey.split('.')[2] ?? ''}`;
  await attempt(known);
  await attempt(unknown);
  const times = { known: [] as number[], unknown: [] as number[] };
  for (let i = 0; i < rounds; i += 1) {
    times.known.push(await attempt(known));
    times.unknown.push(await attempt(unknown));
    if ((i + 1) % 10 === 0) progress(`auth-failure: ${i + 1}/${rounds} rounds`);
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] ?? 0;
  };
  const result = {
    date: new Date().toISOString(),
    rounds,
    knownIdMedianMs: Number(median(times.known).toFixed(2)),
    unknownIdMedianMs: Number(median(times.unknown).toFixed(2)),
    ratio: Number((median(times.unknown) / median(times.known)).toFixed(3)),
  };
  console.log('failed key exchange      median ms');
  console.log(`known key id, wrong secret  ${result.knownIdMedianMs.toFixed(2).padStart(8)}`);
  console.log(`unknown key id              ${result.unknownIdMedianMs.toFixed(2).padStart(8)}`);
  console.log(`unknown / known             ${result.ratio.toFixed(3).padStart(8)}   (target: 0.8 to 1.25)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/auth-failure.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await server.stop();
  removeDir(dataDir);
}
