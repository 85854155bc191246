import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { PlatformError } from '@bulwark/core';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ROLLUP_BUCKETS_MS, type TelemetryRecord } from '../../ingest/index.js';
import { FOLD_INSERTED_ROLLUPS } from '../sql/telemetry.js';

/**
 * Staging table: per connection, emptied by every commit. COPY has no conflict handling, so
 * readings land here first and move on with INSERT … ON CONFLICT DO NOTHING: a redelivered
 * batch (or a repeat outside the stream's duplicate window) is skipped row by row instead of
 * failing whole.
 */
const STAGING = `CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (
  device_id TEXT, msg_id TEXT, schema_id TEXT, seq BIGINT, boot TEXT, device_ts BIGINT, received_at BIGINT, ts BIGINT, skew_ms BIGINT, data TEXT
) ON COMMIT DELETE ROWS`;

const COPY_STAGING = 'COPY telemetry_staging (device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data) FROM STDIN';

const MOVE_STAGED = `WITH ins AS (
  INSERT INTO telemetry (device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data)
  SELECT device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data FROM telemetry_staging
  ON CONFLICT (device_id, msg_id) DO NOTHING
  RETURNING device_id, schema_id, ts, data
), ${FOLD_INSERTED_ROLLUPS(`ARRAY[${ROLLUP_BUCKETS_MS.join(',')}]::bigint[]`)}
SELECT count(*)::int AS inserted FROM ins`;

/** One value in COPY's text format: NULL as \N; backslash, tab, newline and carriage return escaped. */
function field(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** A reading as one line of COPY text. */
export function copyLine(r: TelemetryRecord): string {
  return [r.deviceId, r.msgId, r.schemaId, r.seq, r.boot, r.deviceTs, r.receivedAt, r.ts, r.skewMs, JSON.stringify(r.data)].map(field).join('\t') + '\n';
}

/**
 * The stream's store writer on PostgreSQL: each batch is COPYed into the staging table, moved
 * into `telemetry` skipping what is there already, and folded into the rollups from the rows
 * actually inserted, in one transaction. Its own small pool, so that writers never take the
 * connections the API and the gateways need.
 */
export class PostgresTelemetryCopy {
  readonly #pool: pg.Pool;

  constructor(options: { url: string; schema?: string; maxConnections: number }) {
    // A connection that stops answering (half-open after a network fault) fails the batch, which is retried, instead of holding its writer for ever.
    // bulwark.telemetry_feed=off: the stream is the feed in cluster mode; the feed table's trigger skips these batches (migration 13).
    const config: pg.PoolConfig = {
      connectionString: options.url,
      max: options.maxConnections,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      statement_timeout: 60_000,
      query_timeout: 90_000,
      options: ['-c bulwark.telemetry_feed=off', ...(options.schema !== undefined ? [`-c search_path=${options.schema}`] : [])].join(' '),
    };
    this.#pool = new pg.Pool(config);
    this.#pool.on('error', () => undefined);
  }

  /** Writes the batch; resolves with how many readings were new. Nothing is written when it fails. */
  async write(records: readonly TelemetryRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (cause) {
      throw unavailable(cause);
    }
    let broken: unknown;
    // A connection lost between statements is reported as an event, not by a query: without a listener it would crash the process.
    const lost = (err: Error) => {
      broken = err;
    };
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      await client.query(STAGING);
      await copyToStaging(client, records);
      const { rows } = await client.query<{ inserted: number }>(MOVE_STAGED);
      await client.query('COMMIT');
      return rows[0]?.inserted ?? 0;
    } catch (cause) {
      broken = cause;
      await client.query('ROLLBACK').catch(() => undefined);
      throw unavailable(cause);
    } finally {
      client.off('error', lost);
      // A connection that failed mid-COPY may be in any state: it is closed, not reused.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /** COPY's own speed on this database (rows/s): the same rows into the staging table only, rolled back. For the benchmark. */
  async rawCopyRate(records: readonly TelemetryRecord[]): Promise<number> {
    const client = await this.#pool.connect();
    const lost = () => undefined;
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      await client.query(STAGING);
      const started = performance.now();
      await copyToStaging(client, records);
      const seconds = (performance.now() - started) / 1000;
      await client.query('ROLLBACK');
      return records.length / seconds;
    } finally {
      client.off('error', lost);
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** COPYs the readings into this connection's staging table (created in its transaction before). */
function copyToStaging(client: pg.PoolClient, records: readonly TelemetryRecord[]): Promise<void> {
  return pipeline(Readable.from(lines(records)), client.query(copyFrom(COPY_STAGING)));
}

/** COPY text in chunks of a few hundred lines, not one write per reading. */
function* lines(records: readonly TelemetryRecord[]): Generator<string> {
  for (let i = 0; i < records.length; i += 256)
    yield records
      .slice(i, i + 256)
      .map(copyLine)
      .join('');
}

function unavailable(cause: unknown): PlatformError {
  return new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `PostgreSQL: ${(cause as Error).message}`, { cause });
}
