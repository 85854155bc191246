import type { TestContext } from 'node:test';
import type { TelemetryRecord } from '../ingest/index.js';
import { type TestServer, startTestServer } from './harness.js';

/**
 * Test-only fixtures for telemetry exports: a server with two versions of a meter schema
 * (one field encrypted, one masked), an env schema, three tagged devices, and fast ways to
 * store readings (through the pipeline, which protects sensitive fields, or straight into the
 * store in large batches).
 */

export const T0 = Date.UTC(2026, 0, 1);

export const METER_V1 = {
  $id: 'meter@1',
  type: 'object',
  required: ['kwh'],
  properties: {
    kwh: { type: 'number', 'x-unit': 'kWh' },
    site: { type: 'string' },
    pin: { type: 'string', 'x-sensitive': 'encrypt' },
    holder: { type: 'string', 'x-sensitive': 'mask' },
  },
};
export const METER_V2 = { ...METER_V1, $id: 'meter@2', properties: { ...METER_V1.properties, volt: { type: 'number', 'x-unit': 'V' } } };
export const ENV_V1 = { $id: 'env@1', type: 'object', properties: { temp_c: { type: 'number', 'x-unit': 'degC' } } };

/** Device id → tags. `floor_1` and `floor-1` differ only where LIKE would see a wildcard. */
export const DEVICES: Readonly<Record<string, string[]>> = { 'm-1': ['meters', 'floor-1'], 'm-2': ['meters'], 'e-1': ['floor_1'] };

export interface ExportServer {
  readonly s: TestServer;
  readonly admin: string;
}

export async function startExportServer(t: TestContext, options: { config?: Record<string, unknown> } = {}): Promise<ExportServer> {
  const s = await startTestServer(t, options.config ? { config: options.config } : {});
  const admin = await s.tokenFor(s.adminKey);
  for (const schema of [METER_V1, METER_V2, ENV_V1]) {
    const r = await s.api('POST', '/api/v1/schemas', { token: admin, body: schema });
    if (r.status !== 201) throw new Error(`schema ${schema.$id}: ${r.text}`);
  }
  for (const [id, tags] of Object.entries(DEVICES)) {
    const r = await s.api('POST', '/api/v1/devices', { token: admin, body: { id, tags } });
    if (r.status !== 201) throw new Error(`device ${id}: ${r.text}`);
  }
  return { s, admin };
}

/** Sends one reading through the ingest pipeline (validated, protected, stored); fails on anything but stored. */
export async function ingest(s: TestServer, deviceId: string, id: string, ts: number, schema: string, data: Record<string, unknown>): Promise<void> {
  const payload = Buffer.from(JSON.stringify({ id, ts, schema, data }));
  const result = await s.server.ingest.accept({ deviceId, transport: 'http', topic: null, payload, receivedAt: Date.now() - 1000 });
  if (result.status !== 'stored') throw new Error(`${deviceId}/${id}: ${JSON.stringify(result)}`);
}

/** A reading as the store keeps it, for inserting straight into the store. */
export function record(deviceId: string, msgId: string, ts: number, schemaId: string, data: Record<string, unknown>): TelemetryRecord {
  return { deviceId, msgId, schemaId, seq: null, boot: null, deviceTs: ts, receivedAt: ts + 7, ts, skewMs: 7, data };
}

/** Stores readings straight into the store, `batch` at a time (volume fixtures). */
export async function insertReadings(s: TestServer, count: number, make: (i: number) => TelemetryRecord, batch = 2000): Promise<void> {
  for (let start = 0; start < count; start += batch) {
    const records = Array.from({ length: Math.min(batch, count - start) }, (_, k) => make(start + k));
    await s.server.store.telemetry.insertBatch(records);
  }
}

/** The lines of an NDJSON body, parsed. */
export const ndjson = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** GET of an export with the admin token (or `token`); `query` as URL parameters. */
export async function exportCall(x: ExportServer, query: Record<string, string>, options: { token?: string; headers?: Record<string, string> } = {}) {
  return x.s.api('GET', `/api/v1/telemetry/export?${new URLSearchParams(query)}`, { token: options.token ?? x.admin, ...(options.headers ? { headers: options.headers } : {}) });
}
