import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { silentLogger, systemClock } from '@bulwark/core';
import { CountsFolder } from '../packages/server/src/registry/fleet-counts.js';
import { RegistryService } from '../packages/server/src/registry/index.js';
import { MemoryBus } from '../packages/server/src/bus/index.js';
import { migrate } from '../packages/server/src/store/migrate.js';
import { PostgresClient } from '../packages/server/src/store/postgres/postgres-client.js';
import type { SqlClient } from '../packages/server/src/store/sql-client.js';
import { SqliteClient } from '../packages/server/src/store/sqlite/sqlite-client.js';
import { storeOn } from '../packages/server/src/store/store.js';

/**
 * npm run bench:fleet -- [--devices 1000000] [--stores sqlite,postgres] [--reads 100]
 *   [--churn 2000] [--seconds 20] [--fold-ms 2000] [--pg postgres://root@127.0.0.1:5432/test]
 *
 * The fleet counts (GET /api/v1/devices/stats: by state, connectivity, model, firmware, health
 * band, alert state) at --devices registered devices, on each store:
 *  1. seeds the devices in one statement (the count triggers run on every row), folds the
 *     changes it recorded, and times both;
 *  2. times --reads reads of the counts on an idle store, and the scan the counts replace
 *     (one GROUP BY over the devices per dimension) three times;
 *  3. for --seconds, connects and disconnects devices at --churn events a second in batches
 *     of a tenth of that, folding every --fold-ms as the server does; after each batch is
 *     stored, reads the counts, times the read and checks the online count against the one
 *     the writer expects: a read that misses a stored change is stale.
 * Prints a table, writes bench/results/fleet-counts-latest.{json,md,svg}. Target: a read
 * in ≤ 200 ms and never more than 5 s stale.
 */

const { values: o } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000000' },
    stores: { type: 'string', default: 'sqlite,postgres' },
    reads: { type: 'string', default: '100' },
    churn: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    'fold-ms': { type: 'string', default: '2000' },
    pg: { type: 'string', default: process.env.BULWARK_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const N = Number(o.devices);
const STORES = (o.stores ?? '').split(',').filter(Boolean) as ('sqlite' | 'postgres')[];
const TARGET_MS = 200;
const STALE_LIMIT_MS = 5000;

/** Seeds in one statement: 80 % active, the rest spread over the other states; 70 % online; 12 models, 25 firmware versions; 1 in 20 with a warning, 1 in 50 with two criticals. */
const seedSql = (engine: 'sqlite' | 'postgres') => {
  const rows = engine === 'postgres' ? `SELECT i FROM generate_series(0, ${N - 1}) AS g(i)` : `WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < ${N - 1}) SELECT i FROM g`;
  const pad = engine === 'postgres' ? `lpad(i::text, 7, '0')` : `printf('%07d', i)`;
  return `INSERT INTO devices (id, serial, model, hardware_revision, firmware_version, security_version, owner, location, tags, state, suspended_from,
      created_at, updated_at, online_since, last_seen_at, connect_count, last_disconnect_at, last_disconnect_reason, health_score, alert_state)
    SELECT 'dev-' || ${pad}, NULL, 'model-' || (i % 12), NULL, '1.' || (i % 25) || '.0', NULL, NULL, NULL, '[]',
      CASE i % 20 WHEN 0 THEN 'manufactured' WHEN 1 THEN 'provisioned' WHEN 2 THEN 'suspended' WHEN 3 THEN 'decommissioned' ELSE 'active' END, NULL,
      0, 0, CASE WHEN i % 10 < 7 THEN 1 ELSE NULL END, 1, 1, NULL, NULL,
      CASE WHEN i % 50 = 7 THEN 20 WHEN i % 20 = 9 THEN 85 ELSE 100 END,
      CASE WHEN i % 50 = 7 OR i % 20 = 9 THEN 'firing' ELSE 'none' END
    FROM (${rows}) AS seq`;
};

/** The scan the kept counts replace: one GROUP BY per dimension over every device. */
const SCAN = ['state', "CASE WHEN online_since IS NULL THEN 'offline' ELSE 'online' END", 'model', 'firmware_version', "CASE WHEN health_score >= 80 THEN 'good' WHEN health_score >= 50 THEN 'fair' ELSE 'poor' END", 'alert_state'].map(
  (e) => `SELECT ${e} AS value, COUNT(*) AS n FROM devices GROUP BY 1`,
);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const round = (x: number) => Math.round(x * 10) / 10;

interface StoreResult {
  store: string;
  devices: number;
  seedS: number;
  firstFoldS: number;
  foldedRows: number;
  idle: { p50: number; p99: number; max: number };
  scanMs: number[];
  churn: { events: number; reads: number; p50: number; p99: number; max: number; staleReads: number; folds: number; maxPendingDeltas: number; series: [number, number][] };
}

async function open(engine: 'sqlite' | 'postgres'): Promise<{ db: SqlClient; cleanup: () => Promise<void> }> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-fleet-'));
    const db = await SqliteClient.open(join(dir, 'bulwark.db'));
    return {
      db,
      cleanup: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `bench_fleet_${Date.now()}`;
  const admin = new pg.Client({ connectionString: o.pg });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const db = new PostgresClient({ url: o.pg, schema });
  return {
    db,
    cleanup: async () => {
      await db.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

async function runStore(engine: 'sqlite' | 'postgres'): Promise<StoreResult> {
  const { db, cleanup } = await open(engine);
  try {
    await migrate(db, systemClock);
    const store = storeOn(db, engine);
    const registry = new RegistryService(store.devices, systemClock, new MemoryBus(silentLogger), 300_000, 'bench');
    process.stdout.write(`${engine}: seeding ${N.toLocaleString()} devices… `);
    let t0 = process.hrtime.bigint();
    await db.run(seedSql(engine));
    const seedS = ms(t0) / 1000;
    process.stdout.write(`${seedS.toFixed(1)} s; folding… `);
    t0 = process.hrtime.bigint();
    const foldedRows = await store.devices.foldCounts();
    const firstFoldS = ms(t0) / 1000;
    console.log(`${firstFoldS.toFixed(1)} s (${foldedRows.toLocaleString()} changes)`);
    if (engine === 'postgres') await db.run('ANALYZE devices');

    const idle: number[] = [];
    for (let i = 0; i < Number(o.reads); i += 1) {
      t0 = process.hrtime.bigint();
      const c = await registry.counts();
      idle.push(ms(t0));
      if (c.total !== N) throw new Error(`counts say ${c.total} devices, seeded ${N}`);
    }
    const scanMs: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      t0 = process.hrtime.bigint();
      for (const q of SCAN) await db.all(q);
      scanMs.push(round(ms(t0)));
    }
    console.log(`${engine}: idle read p50 ${round(pct(idle, 50))} ms, p99 ${round(pct(idle, 99))} ms; the scan it replaces ${scanMs.join(', ')} ms`);

    // Churn: devices not decommissioned, in a fixed order; each batch flips the next ones.
    const ids = Array.from({ length: Math.min(N, 100_000) }, (_, i) => i)
      .filter((i) => i % 20 !== 3)
      .map((i) => ({ id: `dev-${String(i).padStart(7, '0')}`, online: i % 10 < 7 }));
    let online = (await registry.counts()).byConnectivity.online;
    const folder = new CountsFolder(store.devices, Number(o['fold-ms']), silentLogger);
    // As the server's fleet-counts job does (CountsFolder.start), counting the folds.
    let folds = 0;
    const foldTimer = setInterval(() => void folder.fold().then(() => (folds += 1)), Number(o['fold-ms']));
    const batch = Math.max(1, Math.round(Number(o.churn) / 10));
    const reads: number[] = [];
    const series: [number, number][] = [];
    let [events, stale, cursor, maxPending] = [0, 0, 0, 0];
    const start = Date.now();
    const end = start + Number(o.seconds) * 1000;
    let lastProgress = start;
    while (Date.now() < end) {
      const tick = Date.now();
      const evs = [];
      for (let k = 0; k < batch; k += 1) {
        const d = ids[cursor++ % ids.length]!;
        d.online = !d.online;
        online += d.online ? 1 : -1;
        evs.push(d.online ? { kind: 'connect' as const, id: d.id, at: tick, node: 'bench' } : { kind: 'disconnect' as const, id: d.id, at: tick, reason: 'bench', node: 'bench' });
      }
      await store.devices.recordConnectivity(evs);
      events += evs.length;
      const t1 = process.hrtime.bigint();
      const c = await registry.counts();
      const took = ms(t1);
      reads.push(took);
      series.push([(Date.now() - start) / 1000, round(took)]);
      if (c.byConnectivity.online !== online) stale += 1;
      if (reads.length % 10 === 0) maxPending = Math.max(maxPending, Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM device_count_deltas'))?.n ?? 0));
      if (Date.now() - lastProgress > 5000) {
        lastProgress = Date.now();
        console.log(`${engine}: churn ${Math.round((Date.now() - start) / 1000)} s, ${events} events, read p99 so far ${round(pct(reads, 99))} ms, stale ${stale}`);
      }
      const wait = tick + 100 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    clearInterval(foldTimer);
    await folder.stop();
    return {
      store: engine,
      devices: N,
      seedS: round(seedS),
      firstFoldS: round(firstFoldS),
      foldedRows,
      idle: { p50: round(pct(idle, 50)), p99: round(pct(idle, 99)), max: round(Math.max(...idle)) },
      scanMs,
      churn: { events, reads: reads.length, p50: round(pct(reads, 50)), p99: round(pct(reads, 99)), max: round(Math.max(...reads)), staleReads: stale, folds, maxPendingDeltas: maxPending, series },
    };
  } finally {
    await cleanup();
  }
}

function table(results: StoreResult[]): string[] {
  const head = ['store', 'devices', 'seed s', 'first fold s', 'idle read p50 / p99 / max ms', 'scan replaced ms', 'churn events', 'churn read p50 / p99 / max ms', 'stale reads', 'folds', 'max unfolded changes'];
  const rows = results.map((r) =>
    [
      r.store,
      r.devices.toLocaleString('en'),
      r.seedS,
      r.firstFoldS,
      `${r.idle.p50} / ${r.idle.p99} / ${r.idle.max}`,
      r.scanMs.join(', '),
      r.churn.events,
      `${r.churn.p50} / ${r.churn.p99} / ${r.churn.max}`,
      `${r.churn.staleReads} of ${r.churn.reads}`,
      r.churn.folds,
      r.churn.maxPendingDeltas,
    ].map(String),
  );
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

const verdict = (results: StoreResult[]) => {
  const worst = Math.max(...results.map((r) => Math.max(r.idle.max, r.churn.max)));
  const stale = results.reduce((n, r) => n + r.churn.staleReads, 0);
  const met = worst <= TARGET_MS && stale === 0;
  return `${met ? 'MET' : 'NOT MET'}: slowest read ${worst} ms (target ≤ ${TARGET_MS} ms); ${stale} stale reads (a read sums the folded counts and the changes since: exact, so staleness is 0 s against ≤ ${STALE_LIMIT_MS / 1000} s)`;
};

/** Read latency over the churn phase, one line per store, with the target. */
function chart(results: StoreResult[]): string {
  const [w, h, l, t, b] = [760, 300, 60, 50, 40];
  const maxY = Math.max(TARGET_MS * 1.1, ...results.map((r) => r.churn.max));
  const maxX = Math.max(1, ...results.flatMap((r) => r.churn.series.map(([x]) => x)));
  const X = (x: number) => l + (x / maxX) * (w - l - 20);
  const Y = (y: number) => h - b - (y / maxY) * (h - t - b);
  const colors = ['#2f6fdb', '#d9822b'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="20" font-size="15" font-weight="bold">Fleet counts: read time while devices connect and disconnect (${N.toLocaleString('en')} devices)</text>`,
    `<line x1="${l}" y1="${Y(TARGET_MS)}" x2="${w - 20}" y2="${Y(TARGET_MS)}" stroke="#c9302c" stroke-dasharray="4 3"/><text x="${w - 20}" y="${Y(TARGET_MS) - 4}" text-anchor="end" fill="#c9302c">target ${TARGET_MS} ms</text>`,
    `<line x1="${l}" y1="${h - b}" x2="${w - 20}" y2="${h - b}" stroke="#444"/><line x1="${l}" y1="${t}" x2="${l}" y2="${h - b}" stroke="#444"/>`,
    `<text x="${(l + w) / 2}" y="${h - 8}" text-anchor="middle">seconds into the churn phase</text><text x="14" y="${(t + h) / 2}" transform="rotate(-90 14 ${(t + h) / 2})" text-anchor="middle">read ms</text>`,
  ];
  for (const v of [0, maxY / 2, maxY]) parts.push(`<text x="${l - 6}" y="${Y(v) + 4}" text-anchor="end">${Math.round(v)}</text>`);
  for (const x of [0, maxX / 2, maxX]) parts.push(`<text x="${X(x)}" y="${h - b + 14}" text-anchor="middle">${Math.round(x)}</text>`);
  parts.push(`<text x="${l + 10}" y="${Y(TARGET_MS) + 16}" fill="#444">the scan the counts replace: ${results.map((r) => `${r.store} ${Math.round(Math.min(...r.scanMs))} ms`).join(', ')} (a read each, off this chart)</text>`);
  results.forEach((r, i) => {
    const c = colors[i % colors.length];
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="1.2" points="${r.churn.series.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`,
      `<text x="${l + 10 + i * 260}" y="40" fill="${c}">${r.store}: p50 ${r.churn.p50} ms, p99 ${r.churn.p99} ms, max ${r.churn.max} ms</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

const results: StoreResult[] = [];
for (const engine of STORES) results.push(await runStore(engine));
const lines = table(results);
console.log(['', ...lines, '', verdict(results)].join('\n'));
const startedAt = new Date().toISOString();
const md = [
  `# Fleet counts at ${N.toLocaleString('en')} devices, ${startedAt}`,
  '',
  `Command: \`npm run bench:fleet -- --devices ${N} --stores ${STORES.join(',')} --reads ${o.reads} --churn ${o.churn} --seconds ${o.seconds} --fold-ms ${o['fold-ms']}\``,
  '',
  ...lines,
  '',
  `**${verdict(results)}**`,
  '',
  '![read time during churn](fleet-counts-latest.svg)',
  '',
].join('\n');
writeFileSync(join(o.out, 'fleet-counts-latest.json'), `${JSON.stringify({ startedAt, settings: o, results }, null, 1)}\n`);
writeFileSync(join(o.out, 'fleet-counts-latest.md'), md);
writeFileSync(join(o.out, 'fleet-counts-latest.svg'), chart(results));
