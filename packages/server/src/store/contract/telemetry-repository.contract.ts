import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeadLetter, TelemetryRecord } from '../../ingest/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const HOUR = 3_600_000;
const base = Math.floor(T0 / HOUR) * HOUR;

function reading(msgId: string, ts: number, data: Record<string, unknown>, deviceId = 'd1'): TelemetryRecord {
  return { deviceId, msgId, schemaId: 's@1', seq: null, boot: null, deviceTs: ts, receivedAt: ts + 5, ts, skewMs: 5, data };
}

function letter(id: string, receivedAt: number): DeadLetter {
  return {
    id,
    deviceId: 'd1',
    transport: 'mqtt',
    topic: 'devices/d1/telemetry',
    receivedAt,
    reason: 'schema_violation',
    problems: [{ path: '/v', expected: 'type number', got: '"x"' }],
    schemaId: 's@1',
    msgId: 'm',
    payload: '{"data":{"pin":"enc:k1:sealed"}}',
    replayedAt: null,
    replayResult: null,
    protection: { kind: 'fields', fields: { pin: 'encrypt' }, problems: [null] },
  };
}

/** The TelemetryRepository port: idempotent batch inserts with rollups, queries, dead letters, retention deletes. */
export function describeTelemetryRepository(make: MakeStore): void {
  describe('TelemetryRepository contract', () => {
    it('stores a batch once: a repeated message id, in the same batch or a later one, is a duplicate', async (t) => {
      const { telemetry } = await make(t);
      assert.deepEqual(await telemetry.insertBatch([reading('a', base + 1000, { v: 1 }), reading('b', base + 2000, { v: 2 }), reading('a', base + 3000, { v: 9 })]), [true, true, false]);
      assert.deepEqual(await telemetry.insertBatch([reading('b', base, { v: 2 }), reading('c', base + 500, { v: 3 })]), [false, true]);
      const rows = await telemetry.query({ deviceId: 'd1', limit: 10 });
      assert.deepEqual(
        rows.map((r) => [r.msgId, r.data]),
        [
          ['c', { v: 3 }],
          ['a', { v: 1 }],
          ['b', { v: 2 }],
        ],
      );
      assert.deepEqual(rows[0], reading('c', base + 500, { v: 3 }), 'every field round-trips');
      assert.deepEqual(
        (await telemetry.query({ deviceId: 'd1', sinceMs: base + 1000, untilMs: base + 2000, limit: 10 })).map((r) => r.msgId),
        ['a'],
      );
      assert.deepEqual(
        (await telemetry.query({ deviceId: 'd1', limit: 2, order: 'desc' })).map((r) => r.msgId),
        ['b', 'a'],
        'newest first',
      );
    });

    it('folds stored readings into minute and hour rollups, ignoring duplicates and non-numbers', async (t) => {
      const { telemetry } = await make(t);
      await telemetry.insertBatch([reading('a', base + 1000, { v: 1, s: 'x' }), reading('b', base + 61_000, { v: 4 })]);
      await telemetry.insertBatch([reading('a', base + 1000, { v: 100 }), reading('c', base + 62_000, { v: -2.5 })]);
      const minutes = await telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: 60_000, limit: 10 });
      assert.deepEqual(
        minutes.map((r) => [r.bucketStart - base, r.count, r.min, r.max, r.mean]),
        [
          [0, 1, 1, 1, 1],
          [60_000, 2, -2.5, 4, 0.75],
        ],
      );
      const hours = await telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: HOUR, limit: 10 });
      assert.deepEqual(
        hours.map((r) => [r.count, r.min, r.max, r.mean]),
        [[3, -2.5, 4, 2.5 / 3]],
      );
      assert.deepEqual(await telemetry.rollups({ deviceId: 'd1', field: 's', bucketMs: 60_000, limit: 10 }), []);
      assert.equal(await telemetry.deleteRollupsBefore(base + 60_000), 1, 'only buckets that ended before the cutoff');
    });

    it('keeps rollups whole across retention, erasure and large numbers (SQLite folds a moment after the commit)', async (t) => {
      const store = await make(t);
      const { telemetry } = store;
      // Stored and deleted by retention before any read: still counted in its rollup.
      await telemetry.insertBatch([reading('old', base + 1000, { v: 2 }), reading('new', base + 2 * HOUR, { v: 5 })]);
      assert.equal(await telemetry.deleteBefore('s@1', base + HOUR), 1);
      assert.deepEqual(
        (await telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: HOUR, limit: 10 })).map((r) => [r.bucketStart - base, r.count, r.mean]),
        [
          [0, 1, 2],
          [2 * HOUR, 1, 5],
        ],
      );
      // The newest readings erased with their device: readings stored after them are still folded, once.
      await telemetry.insertBatch([reading('x', base + 3 * HOUR, { v: 1 }, 'd2')]);
      await store.deviceData.erase('d2');
      await telemetry.insertBatch([reading('y', base + 3 * HOUR, { v: 7 }), reading('z', base + 3 * HOUR + 1, { v: 2 ** 62 })]);
      await telemetry.insertBatch([reading('y', base + 3 * HOUR, { v: 7 })]);
      assert.deepEqual(
        (await telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: HOUR, sinceMs: base + 3 * HOUR, limit: 10 })).map((r) => [r.count, r.min, r.max]),
        [[2, 7, 2 ** 62]],
      );
      assert.deepEqual(await telemetry.rollups({ deviceId: 'd2', field: 'v', bucketMs: HOUR, limit: 10 }), []);
      // Read again: nothing is folded twice.
      assert.equal(
        (await telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: HOUR, limit: 10 })).reduce((n, r) => n + r.count, 0),
        4,
      );
    });

    it('keeps, lists, filters and replays dead letters, and deletes old ones and old readings', async (t) => {
      const { telemetry } = await make(t);
      await telemetry.insertDeadLetter(letter('dl_1', T0));
      await telemetry.insertDeadLetter({ ...letter('dl_2', T0 + 10), reason: 'unknown_schema', schemaId: 'z@1' });
      assert.deepEqual(
        (await telemetry.listDeadLetters({ limit: 10 })).map((d) => d.id),
        ['dl_2', 'dl_1'],
      );
      assert.deepEqual(
        (await telemetry.listDeadLetters({ reason: 'unknown_schema', limit: 10 })).map((d) => d.id),
        ['dl_2'],
      );
      assert.deepEqual(
        (await telemetry.listDeadLetters({ schemaId: 's@1', deviceId: 'd1', limit: 10 })).map((d) => d.id),
        ['dl_1'],
      );
      await telemetry.markReplayed('dl_1', T0 + 20, 'stored');
      assert.deepEqual(
        (await telemetry.listDeadLetters({ replayed: true, limit: 10 })).map((d) => d.id),
        ['dl_1'],
      );
      assert.deepEqual(
        (await telemetry.listDeadLetters({ replayed: false, limit: 10 })).map((d) => d.id),
        ['dl_2'],
      );
      assert.deepEqual(await telemetry.getDeadLetter('dl_1'), { ...letter('dl_1', T0), replayedAt: T0 + 20, replayResult: 'stored' }, 'every field round-trips, protection too');
      await telemetry.insertDeadLetter({ ...letter('dl_3', T0 + 30), deviceId: 'd2' });
      await telemetry.insertDeadLetter({ ...letter('dl_4', T0 + 40), deviceId: 'd2' });
      await telemetry.markReplayed('dl_4', T0 + 50, 'stored');
      assert.equal(await telemetry.deleteDeadLetters({ deviceId: 'd2', replayed: true }), 1, 'only the replayed one of d2');
      assert.equal(await telemetry.deleteDeadLetters({ deviceId: 'd2', reason: 'unknown_schema' }), 0);
      assert.equal(await telemetry.deleteDeadLetters({ deviceId: 'd2', beforeMs: T0 + 31 }), 1);
      assert.equal(await telemetry.deleteDeadLettersBefore(T0 + 5), 1);
      await telemetry.insertBatch([reading('old', base, { v: 1 }), reading('new', base + HOUR, { v: 2 })]);
      assert.deepEqual(await telemetry.storedSchemaIds(), ['s@1']);
      assert.equal(await telemetry.deleteBefore('s@1', base + 1), 1);
      assert.deepEqual(
        (await telemetry.query({ deviceId: 'd1', limit: 10 })).map((r) => r.msgId),
        ['new'],
      );
    });

    it('finds dead letters kept in clear and seals each once, leaving protected ones alone', async (t) => {
      const { telemetry } = await make(t);
      const clear = (id: string, at: number): DeadLetter => ({ ...letter(id, at), payload: '{"pin":"1234"}', protection: { kind: 'none' } });
      await telemetry.insertDeadLetter(clear('dl_b', T0 + 1));
      await telemetry.insertDeadLetter(clear('dl_a', T0));
      await telemetry.insertDeadLetter(letter('dl_p', T0 - 1));
      assert.deepEqual(
        (await telemetry.listUnprotectedDeadLetters(10)).map((d) => [d.id, d.protection.kind]),
        [
          ['dl_a', 'none'],
          ['dl_b', 'none'],
        ],
        'oldest first, protected ones not listed',
      );
      assert.deepEqual(
        (await telemetry.listUnprotectedDeadLetters(1)).map((d) => d.id),
        ['dl_a'],
      );
      const sealed = { payload: 'enc:k1:whole', problems: [{ path: '/v', expected: 'type number', got: 'enc:k1:got' }], protection: { kind: 'whole' } } as const;
      assert.equal(await telemetry.protectDeadLetter('dl_a', sealed), true);
      assert.equal(await telemetry.protectDeadLetter('dl_a', { ...sealed, payload: 'enc:k1:again' }), false, 'a letter already sealed is not sealed twice');
      assert.equal(await telemetry.protectDeadLetter('dl_p', sealed), false, 'a protected letter is left as it is');
      assert.deepEqual(await telemetry.getDeadLetter('dl_a'), { ...clear('dl_a', T0), ...sealed });
      assert.deepEqual(await telemetry.getDeadLetter('dl_p'), letter('dl_p', T0 - 1));
      assert.deepEqual(
        (await telemetry.listUnprotectedDeadLetters(10)).map((d) => d.id),
        ['dl_b'],
      );
      await telemetry.scrubDeadLetterSpace();
      assert.deepEqual(await telemetry.getDeadLetter('dl_a'), { ...clear('dl_a', T0), ...sealed }, 'the storage is rewritten, the letters kept');
    });
  });
}
