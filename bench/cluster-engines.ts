import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { type RunningEngine, startHaproxy, startNats, startRedis } from '../packages/server/src/testing/services.js';
import { atExit, progress } from './children.js';

/**
 * The engines of the cluster phase, all the bench's own: a fresh PostgreSQL database
 * (`bw_bench_<random>`, on the server `--pg` names, dropped afterwards), a `nats-server -js`
 * and a `redis-server` on free loopback ports, HAProxy for two nodes; every process stopped
 * by its pid, also when the bench fails or is interrupted.
 */

export interface Engines {
  /** The bench database's URL (what `--store` takes). */
  readonly storeUrl: string;
  readonly dbName: string;
  readonly nats: RunningEngine;
  readonly redis: RunningEngine;
  /** Rows in `telemetry` of the bench database. */
  telemetryRows(): Promise<number>;
  /** Pids of the PostgreSQL backends serving the bench database, and of the server's background processes (WAL writer, checkpointer, …). */
  pgPids(): Promise<{ backends: number[]; background: number[] }>;
  stop(): Promise<void>;
}

function psqlSync(baseUrl: string, sql: string): void {
  execFileSync('psql', [baseUrl, '-qAtc', sql], { stdio: 'ignore', timeout: 20_000 });
}

/** Engines for the cluster phase; the database is made by `bulwark store migrate` from the embedded template (see cluster.ts). */
export async function startEngines(baseUrl: string): Promise<Engines> {
  const dbName = `bw_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dropSync = () => psqlSync(baseUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  const stopped: (() => void)[] = [];
  const removeHook = atExit(() => {
    for (const kill of stopped) kill();
    dropSync();
  });
  const target = new URL(baseUrl);
  target.pathname = `/${dbName}`;
  const storeUrl = target.toString();
  const nats = await startNats();
  stopped.push(() => killPid(nats.pid));
  const redis = await startRedis();
  stopped.push(() => killPid(redis.pid));
  progress(`cluster: database ${dbName}, nats-server pid ${nats.pid} (${nats.url}), redis-server pid ${redis.pid} (${redis.url})`);
  const db = new pg.Client({ connectionString: storeUrl });
  let dbOpen = false;
  return {
    storeUrl,
    dbName,
    nats,
    redis,
    async telemetryRows() {
      if (!dbOpen) {
        await db.connect();
        dbOpen = true;
      }
      return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM telemetry')).rows[0]?.n ?? 0);
    },
    async pgPids() {
      // Asked on the admin connection (database `test`), so that the question itself is not counted as the bench database's work.
      const rows = (await admin.query<{ pid: number; datname: string | null; backend_type: string }>('SELECT pid, datname, backend_type FROM pg_stat_activity')).rows;
      const own = process.pid;
      return {
        backends: rows.filter((r) => r.datname === dbName && r.backend_type === 'client backend' && r.pid !== own).map((r) => r.pid),
        background: rows.filter((r) => r.backend_type !== 'client backend' && r.datname === null).map((r) => r.pid),
      };
    },
    async stop() {
      if (dbOpen) await db.end().catch(() => undefined);
      await nats.stop();
      await redis.stop();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((err: unknown) => progress(`cluster: could not drop ${dbName}: ${String(err)}`));
      await admin.end().catch(() => undefined);
      removeHook();
      progress(`cluster: engines stopped, database ${dbName} dropped`);
    },
  };
}

/** HAProxy in front of the nodes, as docs/guides/cluster.md ships it (the tests' configuration). */
export async function startBalancer(nodes: readonly { name: string; mqttPort: number; httpPort: number }[]): Promise<RunningEngine> {
  const haproxy = await startHaproxy(nodes.map((n) => ({ name: n.name, port: n.mqttPort, healthPort: n.httpPort })));
  const removeHook = atExit(() => killPid(haproxy.pid));
  return {
    ...haproxy,
    stop: async () => {
      await haproxy.stop();
      removeHook();
    },
  };
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** The master key file of an embedded data directory, as BULWARK_MASTER_KEY takes it. */
export function masterKeyOf(dataDir: string): string {
  return readFileSync(`${dataDir}/master.key`, 'utf8').trim();
}
