import type { TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Clock } from '@bulwark/core';
import { type TestServer, startTestServer } from './harness.js';
import { type EnrolledDevice, connectDevice, enrollDevice } from './devices.js';

/** Test-only helpers for telemetry tests: a server with the env-sensor schema and one connected device. */

export const schema = {
  $id: 'env-sensor@1',
  type: 'object',
  required: ['temp_c'],
  additionalProperties: false,
  properties: { temp_c: { type: 'number', 'x-unit': 'degC', minimum: -40, maximum: 125 }, note: { type: 'string', maxLength: 64 } },
};

export interface TelemetrySetup {
  readonly s: TestServer;
  readonly admin: string;
  readonly device: EnrolledDevice;
  readonly client: MqttClient;
}

export async function setup(t: TestContext, options: { id?: string; clock?: Clock; config?: Record<string, unknown>; pgSchema?: string } = {}): Promise<TelemetrySetup> {
  const s = await startTestServer(t, { ...(options.clock ? { clock: options.clock } : {}), ...(options.config ? { config: options.config } : {}), ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}) });
  const admin = await s.tokenFor(s.adminKey);
  const registered = await s.api('POST', '/api/v1/schemas', { token: admin, body: schema });
  if (registered.status !== 201) throw new Error(registered.text);
  const device = await enrollDevice(s, admin, options.id ?? 'sensor-1');
  const client = await connectDevice(s, device);
  t.after(() => client.end(true));
  return { s, admin, device, client };
}

export const env = (id: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ id, seq: 1, ts: Date.now(), schema: 'env-sensor@1', data, ...extra });

export interface Reading {
  msgId: string;
  ts: number;
  deviceTs: number | null;
  skewMs: number | null;
  receivedAt: number;
  data: Record<string, unknown>;
}

export const readings = async (s: TestServer, admin: string, id = 'sensor-1') => (await s.api('GET', `/api/v1/devices/${id}/telemetry?limit=10000`, { token: admin })).body as Reading[];

export const metric = async (s: TestServer, re: RegExp) => Number(re.exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0);

/** Reads Server-Sent Events from a fetch response, one block at a time. */
export function sseReader(res: Response): () => Promise<{ event: string; data: Record<string, unknown> }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async () => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        return { event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}
