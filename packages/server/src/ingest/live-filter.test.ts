import assert from 'node:assert/strict';
import { it } from 'node:test';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { env, setup } from '../testing/telemetry.js';

it('streams only the readings of devices with a tag, over a WebSocket, and refuses an unknown query parameter', async (t) => {
  const { s, admin, client: untagged } = await setup(t);
  const tagged = await enrollDevice(s, admin, 'hall-a-1', { tags: ['hall-a'] });
  const taggedClient = await connectDevice(s, tagged);
  t.after(() => taggedClient.end(true));
  const { WebSocket } = await import('ws');
  const base = `${s.url.replace('http', 'ws')}/api/v1/telemetry/ws`;
  const bad = new WebSocket(`${base}?group=x`, { headers: { authorization: `Bearer ${admin}` } });
  bad.on('error', () => undefined);
  assert.equal(await new Promise<number>((resolve) => bad.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))), 400);
  bad.terminate();

  const socket = new WebSocket(`${base}?tag=hall-a`, { headers: { authorization: `Bearer ${admin}` } });
  t.after(() => socket.terminate());
  const seen: string[] = [];
  let gotMarker: () => void = () => undefined;
  const marker = new Promise<void>((resolve) => {
    gotMarker = resolve;
  });
  await new Promise<void>((resolve) =>
    socket.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { ready?: boolean; deviceId?: string; msgId?: string };
      if (m.ready) return resolve();
      seen.push(`${m.deviceId}/${m.msgId}`);
      if (m.msgId === 'marker') gotMarker();
    }),
  );
  await untagged.publishAsync('devices/sensor-1/telemetry', env('u-1', { temp_c: 1 }), { qos: 1 });
  await taggedClient.publishAsync('devices/hall-a-1/telemetry', env('t-1', { temp_c: 2 }), { qos: 1 });
  await untagged.publishAsync('devices/sensor-1/telemetry', env('u-2', { temp_c: 3 }), { qos: 1 });
  await taggedClient.publishAsync('devices/hall-a-1/telemetry', env('marker', { temp_c: 4 }), { qos: 1 });
  await marker;
  assert.deepEqual(seen, ['hall-a-1/t-1', 'hall-a-1/marker']);
});
