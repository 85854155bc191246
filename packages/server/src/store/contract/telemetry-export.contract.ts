import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExportFilter, ExportPageQuery, ExportPosition, TelemetryExportSource, TelemetryRecord } from '../../ingest/index.js';
import type { Device } from '../../registry/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';
import { testDevice } from './device-state.contract.js';

const device = (id: string, tags: string[]): Device => testDevice(id, { tags });

const reading = (deviceId: string, msgId: string, ts: number, schemaId = 's@1', receivedAt = ts + 5): TelemetryRecord => ({
  deviceId,
  msgId,
  schemaId,
  seq: 1,
  boot: 'b1',
  deviceTs: ts,
  receivedAt,
  ts,
  skewMs: 5,
  data: { v: ts - T0, note: msgId },
});

const key = (r: TelemetryRecord) => `${r.deviceId}/${r.ts - T0}/${r.msgId}`;
const base = { sinceMs: T0, untilMs: T0 + 1000, receivedUntilMs: T0 + 10_000 };

/** Every page of an export, `limit` readings at a time, each page after the last reading of the one before. */
async function pages(source: TelemetryExportSource, filter: ExportFilter, limit: number, q: Partial<ExportPageQuery> = {}): Promise<string[]> {
  const out: string[] = [];
  let after: ExportPosition | undefined;
  for (;;) {
    const page = await source.exportPage({ ...base, ...q, filter, limit, ...(after ? { after } : {}) });
    out.push(...page.map(key));
    const last = page[page.length - 1];
    if (page.length < limit || !last) return out;
    after = { deviceId: last.deviceId, ts: last.ts, msgId: last.msgId };
  }
}

/** TelemetryExportSource: keyset pages of stored readings by device, tag (joined with the registry) or schema. */
export function describeTelemetryExport(make: MakeStore): void {
  describe('TelemetryExportSource contract', () => {
    it('pages by device, tag or schema in (device, time, message id) order; page size changes nothing', async (t) => {
      const store = await make(t);
      await store.devices.insertMany([device('a', ['floor-1', 'x']), device('b', ['x']), device('c', ['floor_1']), device('d', [])]);
      await store.telemetry.insertBatch([
        reading('b', 'm2', T0 + 10),
        reading('a', 'm9', T0 + 10),
        reading('a', 'm1', T0 + 10),
        reading('a', 'm5', T0 + 3, 's@2'),
        reading('c', 'm1', T0 + 999),
        reading('d', 'm1', T0 + 1),
        reading('a', 'm0', T0 + 1000),
        reading('b', 'm1', T0 - 1),
        reading('b', 'm3', T0 + 20, 's@1', T0 + 10_001),
        reading('b', 'm4', T0 + 30, 's@3'),
      ]);
      const cases: [ExportFilter, string[]][] = [
        [{ kind: 'device', deviceId: 'a' }, ['a/3/m5', 'a/10/m1', 'a/10/m9']],
        [{ kind: 'tag', tag: 'x' }, ['a/3/m5', 'a/10/m1', 'a/10/m9', 'b/10/m2', 'b/30/m4']],
        [{ kind: 'tag', tag: 'floor_1' }, ['c/999/m1']],
        [{ kind: 'tag', tag: 'floor' }, []],
        [{ kind: 'schema', schemaIds: ['s@1'] }, ['a/10/m1', 'a/10/m9', 'b/10/m2', 'c/999/m1', 'd/1/m1']],
        [{ kind: 'schema', schemaIds: ['s@2', 's@3'] }, ['a/3/m5', 'b/30/m4']],
      ];
      for (const [filter, expected] of cases) {
        for (const limit of [1, 2, 3, 100]) assert.deepEqual(await pages(store.telemetryExport, filter, limit), expected, `${JSON.stringify(filter)}, pages of ${limit}`);
      }
      assert.deepEqual(await pages(store.telemetryExport, { kind: 'tag', tag: 'x' }, 2, { receivedUntilMs: T0 + 14 }), ['a/3/m5'], 'only readings received by then');
      const first = (await store.telemetryExport.exportPage({ ...base, filter: { kind: 'device', deviceId: 'd' }, limit: 1 }))[0];
      assert.deepEqual(first, reading('d', 'm1', T0 + 1), 'every field round-trips');
    });

    it('resumes after a position whose reading is gone, and reads nothing after the last', async (t) => {
      const { telemetry, telemetryExport } = await make(t);
      await telemetry.insertBatch([reading('a', 'm1', T0 + 1), reading('a', 'm3', T0 + 2), reading('b', 'm1', T0)]);
      const after = { deviceId: 'a', ts: T0 + 2, msgId: 'm2' };
      const rest = await telemetryExport.exportPage({ ...base, filter: { kind: 'schema', schemaIds: ['s@1'] }, after, limit: 10 });
      assert.deepEqual(rest.map(key), ['a/2/m3', 'b/0/m1']);
      assert.deepEqual(await telemetryExport.exportPage({ ...base, filter: { kind: 'device', deviceId: 'b' }, after: { deviceId: 'b', ts: T0, msgId: 'm1' }, limit: 10 }), []);
    });
  });
}
