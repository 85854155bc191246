import { PlatformError } from '@bulwark/core';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPurge,
  type DeadLetterProtection,
  type DeadLetterReason,
  ROLLUP_BUCKETS_MS,
  type Rollup,
  type RollupQuery,
  type TelemetryQuery,
  type TelemetryRecord,
  type TelemetryRepository,
  type Transport,
} from '../../ingest/index.js';
import type { SchemaProblem } from '../../schemas/index.js';
import type { SqlClient, SqlValue } from '../sql-client.js';
import { num } from './json.js';
import { Where } from './where.js';
import { whereDeviceWithin } from './group-query.js';

export interface TelemetryRow {
  device_id: string;
  msg_id: string;
  schema_id: string;
  seq: number | null;
  boot: string | null;
  device_ts: number | null;
  received_at: number;
  ts: number;
  skew_ms: number | null;
  data: string;
}
interface DeadLetterRow {
  id: string;
  device_id: string;
  transport: string;
  topic: string | null;
  received_at: number;
  reason: string;
  problems: string;
  schema_id: string | null;
  msg_id: string | null;
  payload: string;
  replayed_at: number | null;
  replay_result: string | null;
  /** JSON of DeadLetterProtection; NULL for a letter stored in clear before migration 8. */
  protection: string | null;
}

export const toRecord = (r: TelemetryRow): TelemetryRecord => ({
  deviceId: r.device_id,
  msgId: r.msg_id,
  schemaId: r.schema_id,
  seq: num(r.seq),
  boot: r.boot,
  deviceTs: num(r.device_ts),
  receivedAt: Number(r.received_at),
  ts: Number(r.ts),
  skewMs: num(r.skew_ms),
  data: JSON.parse(r.data) as Record<string, unknown>,
});

const toLetter = (r: DeadLetterRow): DeadLetter => ({
  id: r.id,
  deviceId: r.device_id,
  transport: r.transport as Transport,
  topic: r.topic,
  receivedAt: Number(r.received_at),
  reason: r.reason as DeadLetterReason,
  problems: JSON.parse(r.problems) as SchemaProblem[],
  schemaId: r.schema_id,
  msgId: r.msg_id,
  payload: r.payload,
  replayedAt: num(r.replayed_at),
  replayResult: r.replay_result,
  protection: r.protection === null ? { kind: 'none' } : (JSON.parse(r.protection) as DeadLetterProtection),
});

const protectionColumn = (p: DeadLetterProtection): string | null => (p.kind === 'none' ? null : JSON.stringify(p));

const INSERT_READING = `INSERT INTO telemetry (device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (device_id, msg_id) DO NOTHING`;

/**
 * SQLite: the readings stored since the last fold (by their feed sequence, which is never
 * reused), folded into their rollup buckets in one statement: numeric top-level fields, one
 * row per field and bucket. TOTAL, not SUM: a float sum that cannot overflow on large integers.
 */
export const FOLD_ROLLUPS_SQLITE = `INSERT INTO telemetry_rollups (device_id, schema_id, field, bucket_ms, bucket_start, count, sum, min, max)
  SELECT t.device_id, t.schema_id, j.key, b.ms, (t.ts / b.ms) * b.ms, COUNT(*), TOTAL(j.value), MIN(j.value), MAX(j.value)
  FROM telemetry_feed f
  JOIN telemetry t ON t.device_id = f.device_id AND t.msg_id = f.msg_id
  JOIN json_each(t.data) j
  JOIN (${ROLLUP_BUCKETS_MS.map((ms) => `SELECT ${ms} AS ms`).join(' UNION ALL ')}) b
  WHERE f.seq > (SELECT feed_seq FROM telemetry_rollup_progress WHERE id = 1) AND j.type IN ('integer', 'real')
  GROUP BY t.device_id, t.schema_id, j.key, b.ms, (t.ts / b.ms) * b.ms
  ON CONFLICT (device_id, field, bucket_ms, bucket_start, schema_id) DO UPDATE SET
    count = telemetry_rollups.count + excluded.count, sum = telemetry_rollups.sum + excluded.sum,
    min = CASE WHEN excluded.min < telemetry_rollups.min THEN excluded.min ELSE telemetry_rollups.min END,
    max = CASE WHEN excluded.max > telemetry_rollups.max THEN excluded.max ELSE telemetry_rollups.max END`;

/**
 * After the fold, in its transaction: the progress moves to the newest sequence ever given
 * (AUTOINCREMENT's, so never back, even when the newest feed rows were deleted); unchanged, it
 * is not written, and a fold with nothing to do writes nothing.
 */
export const FOLD_PROGRESS_SQLITE = `UPDATE telemetry_rollup_progress SET feed_seq = (SELECT seq FROM sqlite_sequence WHERE name = 'telemetry_feed')
  WHERE id = 1 AND feed_seq < (SELECT seq FROM sqlite_sequence WHERE name = 'telemetry_feed')`;

/** How long after a batch is stored its readings are folded into their rollups (SQLite). */
const FOLD_DELAY_MS = 1000;

/**
 * PostgreSQL: the rollups of exactly the readings a statement inserted (its `ins` CTE with
 * device_id, schema_id, ts, data), folded in SQL: numeric fields of `data`, one row per field
 * and bucket, in key order so that two writers sharing buckets lock them in the same order.
 */
export const FOLD_INSERTED_ROLLUPS = (buckets: string): string => `folded AS (
  INSERT INTO telemetry_rollups (device_id, schema_id, field, bucket_ms, bucket_start, count, sum, min, max)
  SELECT ins.device_id, ins.schema_id, f.key, b.ms, (ins.ts / b.ms) * b.ms, count(*), sum(f.value::float8), min(f.value::float8), max(f.value::float8)
  FROM ins CROSS JOIN LATERAL jsonb_each(ins.data::jsonb) AS f(key, value) CROSS JOIN unnest(${buckets}) AS b(ms)
  WHERE jsonb_typeof(f.value) = 'number'
  GROUP BY ins.device_id, ins.schema_id, f.key, b.ms, (ins.ts / b.ms) * b.ms
  ORDER BY 1, 3, 4, 5, 2
  ON CONFLICT (device_id, field, bucket_ms, bucket_start, schema_id) DO UPDATE SET
    count = telemetry_rollups.count + excluded.count, sum = telemetry_rollups.sum + excluded.sum,
    min = LEAST(telemetry_rollups.min, excluded.min), max = GREATEST(telemetry_rollups.max, excluded.max)
)`;

/**
 * PostgreSQL: a whole batch in one statement, so one round trip (and its own transaction):
 * the readings as one array per column, skipping those already stored, and their rollups;
 * answers with the readings it inserted.
 */
const INSERT_BATCH_POSTGRES = `WITH ins AS (
  INSERT INTO telemetry (device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[])
  ON CONFLICT (device_id, msg_id) DO NOTHING
  RETURNING device_id, msg_id, schema_id, ts, data
), ${FOLD_INSERTED_ROLLUPS('$11::bigint[]')}
SELECT device_id, msg_id FROM ins`;

const readingParams = (r: TelemetryRecord): SqlValue[] => [r.deviceId, r.msgId, r.schemaId, r.seq, r.boot, r.deviceTs, r.receivedAt, r.ts, r.skewMs, JSON.stringify(r.data)];

export class SqlTelemetryRepository implements TelemetryRepository {
  /** SQLite: the fold under way, the one that waits for it (shared by every caller meanwhile), and the timer of the next. */
  #folding: Promise<void> | undefined;
  #nextFold: Promise<void> | undefined;
  #foldTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqlClient) {}

  /**
   * Stores the readings not stored before, in one transaction and, on SQLite, one message to
   * the store's thread. The batch is written assuming every reading is new (the pipeline's
   * de-duplication has already dropped the repeats it remembers); if the store already holds
   * some, the batch rolls back and is written again without them.
   *
   * Rollups: PostgreSQL folds the inserted readings in the same statement. SQLite folds them
   * a moment later (FOLD_DELAY_MS), every reading stored meanwhile in one statement, from the
   * feed's sequence: a rollup row is rewritten once a second instead of once per batch, and
   * every read of rollups folds what is pending first (docs/decisions/0035).
   */
  async insertBatch(records: readonly TelemetryRecord[]): Promise<boolean[]> {
    if (this.db.engine === 'postgres') return this.#insertBatchPostgres(records);
    const stored = records.map(() => true);
    for (let attempt = 0; ; attempt += 1) {
      const fresh = records.filter((_, i) => stored[i]);
      if (fresh.length === 0) return stored;
      const result = await this.db.batch([{ sql: INSERT_READING, paramsList: fresh.map(readingParams), expectChanged: 1 }]);
      if (result.committed) {
        this.#foldTimer ??= setTimeout(() => {
          this.#foldTimer = undefined;
          this.foldRollups().catch(() => undefined);
        }, FOLD_DELAY_MS).unref();
        return stored;
      }
      // Mark the readings the store already had, and write the rest again.
      const positions = stored.flatMap((s, i) => (s ? [i] : []));
      result.changed.forEach((n, k) => {
        if (n === 0) stored[positions[k] as number] = false;
      });
      if (attempt >= 3) throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', 'a telemetry batch kept conflicting with concurrent writers');
    }
  }

  /** PostgreSQL: the batch in one statement (INSERT_BATCH_POSTGRES); a reading repeated within the batch is stored once, as its first occurrence. */
  async #insertBatchPostgres(records: readonly TelemetryRecord[]): Promise<boolean[]> {
    const columns: SqlValue[][] = Array.from({ length: 10 }, () => []);
    for (const r of records) readingParams(r).forEach((v, i) => columns[i]?.push(v));
    const inserted = await this.db.all<{ device_id: string; msg_id: string }>(INSERT_BATCH_POSTGRES, [...columns, [...ROLLUP_BUCKETS_MS]] as unknown as SqlValue[]);
    const fresh = new Set(inserted.map((r) => `${r.device_id}\u0000${r.msg_id}`));
    return records.map((r) => fresh.delete(`${r.deviceId}\u0000${r.msgId}`));
  }

  /**
   * SQLite: folds every reading stored so far into its rollups (one transaction: the rollups
   * and the progress together, so a crash folds nothing twice and the next fold takes up the
   * rest). Resolves once readings stored before the call are folded. PostgreSQL: nothing to do.
   */
  foldRollups(): Promise<void> {
    if (this.db.engine !== 'sqlite') return Promise.resolve();
    // A fold under way may have begun before the caller's readings were stored: one more after
    // it, which every caller meanwhile shares.
    if (this.#nextFold) return this.#nextFold;
    const start = (): Promise<void> => {
      const fold = this.db
        .batch([
          { sql: FOLD_ROLLUPS_SQLITE, paramsList: [[]] },
          { sql: FOLD_PROGRESS_SQLITE, paramsList: [[]] },
        ])
        .then(() => undefined)
        .finally(() => {
          if (this.#folding === fold) this.#folding = undefined;
        });
      this.#folding = fold;
      return fold;
    };
    if (!this.#folding) return start();
    const next = this.#folding
      .catch(() => undefined)
      .then(() => {
        this.#nextFold = undefined;
        return start();
      });
    this.#nextFold = next;
    return next;
  }

  /** Stops the scheduled fold (the store is closing; what is pending is folded by the next start or read). */
  stopFolding(): void {
    if (this.#foldTimer) clearTimeout(this.#foldTimer);
    this.#foldTimer = undefined;
  }

  async rollups(q: RollupQuery): Promise<Rollup[]> {
    await this.foldRollups();
    const w = new Where().add('device_id = ?', q.deviceId).add('field = ?', q.field).add('bucket_ms = ?', q.bucketMs).add('bucket_start >= ?', q.sinceMs).add('bucket_start < ?', q.untilMs);
    const rows = await this.db.all<{ field: string; schema_id: string; bucket_start: number; bucket_ms: number; count: number; sum: number; min: number; max: number }>(
      `SELECT * FROM telemetry_rollups ${w} ORDER BY bucket_start, schema_id LIMIT ${w.next(q.limit)}`,
      w.params,
    );
    return rows.map((r) => ({
      field: r.field,
      schemaId: r.schema_id,
      bucketStart: Number(r.bucket_start),
      bucketMs: Number(r.bucket_ms),
      count: Number(r.count),
      min: Number(r.min),
      max: Number(r.max),
      mean: Number(r.sum) / Number(r.count),
    }));
  }

  async fieldMeans(deviceIds: readonly string[], field: string, bucketMs: number, sinceMs: number): Promise<Map<string, number>> {
    await this.foldRollups();
    const means = new Map<string, number>();
    // The key's device_id comes first: one look-up per device, in chunks of a size both engines take.
    for (let i = 0; i < deviceIds.length; i += 500) {
      const ids = deviceIds.slice(i, i + 500);
      const rows = await this.db.all<{ device_id: string; s: number; n: number }>(
        `SELECT device_id, SUM(sum) AS s, SUM(count) AS n FROM telemetry_rollups
          WHERE device_id IN (${ids.map((_, j) => `$${j + 4}`).join(', ')}) AND field = $1 AND bucket_ms = $2 AND bucket_start >= $3 GROUP BY device_id`,
        [field, bucketMs, sinceMs, ...ids],
      );
      for (const r of rows) if (Number(r.n) > 0) means.set(r.device_id, Number(r.s) / Number(r.n));
    }
    return means;
  }

  deleteRollupsBefore(cutoffMs: number): Promise<number> {
    return this.db.run('DELETE FROM telemetry_rollups WHERE bucket_start + bucket_ms <= $1', [cutoffMs]);
  }

  async query(q: TelemetryQuery): Promise<TelemetryRecord[]> {
    const w = new Where().add('device_id = ?', q.deviceId).add('ts >= ?', q.sinceMs).add('ts < ?', q.untilMs);
    return (await this.db.all<TelemetryRow>(`SELECT * FROM telemetry ${w} ORDER BY ${q.order === 'desc' ? 'ts DESC, msg_id DESC' : 'ts, msg_id'} LIMIT ${w.next(q.limit)}`, w.params)).map(toRecord);
  }

  async insertDeadLetter(d: DeadLetter): Promise<void> {
    await this.db.run(
      `INSERT INTO dead_letters (id, device_id, transport, topic, received_at, reason, problems, schema_id, msg_id, payload, replayed_at, replay_result, protection)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [d.id, d.deviceId, d.transport, d.topic, d.receivedAt, d.reason, JSON.stringify(d.problems), d.schemaId, d.msgId, d.payload, d.replayedAt, d.replayResult, protectionColumn(d.protection)],
    );
  }

  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    const r = await this.db.get<DeadLetterRow>('SELECT * FROM dead_letters WHERE id = $1', [id]);
    return r && toLetter(r);
  }

  async listDeadLetters(f: DeadLetterFilter): Promise<DeadLetter[]> {
    const w = new Where().add('device_id = ?', f.deviceId).add('reason = ?', f.reason).add('schema_id = ?', f.schemaId);
    if (f.replayed !== undefined) w.raw(f.replayed ? 'replayed_at IS NOT NULL' : 'replayed_at IS NULL');
    if (f.within) whereDeviceWithin(w, 'device_id', f.within);
    return (await this.db.all<DeadLetterRow>(`SELECT * FROM dead_letters ${w} ORDER BY received_at DESC, id LIMIT ${w.next(f.limit)}`, w.params)).map(toLetter);
  }

  async storedSchemaIds(): Promise<string[]> {
    return (await this.db.all<{ schema_id: string }>('SELECT DISTINCT schema_id FROM telemetry ORDER BY schema_id')).map((r) => r.schema_id);
  }

  /** The feed's entries for the deleted readings go with them (the same condition on the same columns). */
  async deleteBefore(schemaId: string, cutoffMs: number): Promise<number> {
    // Folded first: a reading deleted before its fold would be missing from its rollups.
    await this.foldRollups();
    return this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM telemetry_feed WHERE schema_id = $1 AND ts < $2', [schemaId, cutoffMs]);
      return tx.run('DELETE FROM telemetry WHERE schema_id = $1 AND ts < $2', [schemaId, cutoffMs]);
    });
  }

  deleteDeadLettersBefore(cutoffMs: number): Promise<number> {
    return this.db.run('DELETE FROM dead_letters WHERE received_at < $1', [cutoffMs]);
  }

  deleteDeadLetters(f: DeadLetterPurge): Promise<number> {
    const w = new Where().add('device_id = ?', f.deviceId).add('reason = ?', f.reason).add('schema_id = ?', f.schemaId).add('received_at < ?', f.beforeMs);
    if (f.replayed) w.raw('replayed_at IS NOT NULL');
    if (f.within) whereDeviceWithin(w, 'device_id', f.within);
    return this.db.run(`DELETE FROM dead_letters ${w}`, w.params);
  }

  async listUnprotectedDeadLetters(limit: number): Promise<DeadLetter[]> {
    return (await this.db.all<DeadLetterRow>(`SELECT * FROM dead_letters WHERE protection IS NULL ORDER BY received_at, id LIMIT ${Math.trunc(limit)}`)).map(toLetter);
  }

  async protectDeadLetter(id: string, sealed: Pick<DeadLetter, 'payload' | 'problems' | 'protection'>): Promise<boolean> {
    const changed = await this.db.run('UPDATE dead_letters SET payload = $2, problems = $3, protection = $4 WHERE id = $1 AND protection IS NULL', [id, sealed.payload, JSON.stringify(sealed.problems), protectionColumn(sealed.protection)]);
    return changed > 0;
  }

  async scrubDeadLetterSpace(): Promise<void> {
    if (this.db.engine === 'sqlite') {
      await this.db.run('VACUUM');
      await this.db.all('PRAGMA wal_checkpoint(TRUNCATE)');
    } else await this.db.run('VACUUM FULL dead_letters');
  }

  async markReplayed(id: string, at: number, result: string): Promise<void> {
    await this.db.run('UPDATE dead_letters SET replayed_at = $2, replay_result = $3 WHERE id = $1', [id, at, result]);
  }
}
