import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import mqtt from 'mqtt';
import type { CommandResult, TelemetryEnvelope, TwinReported } from '@bulwark/protocol';
import { agentDir, startAgent } from './testing/agents.js';
import { until } from './testing/until.js';
import { issue, startMosquitto } from './testing/mosquitto.js';

it('interop: telemetry, commands and twin work against Mosquitto with TLS client certificates (only the contract, no Bulwark server)', async (t) => {
  const dir = agentDir(t, 'mosquitto');
  const m = await startMosquitto(dir);
  t.after(() => m.stop());
  const id = 'interop-1';
  const dataDir = join(dir, 'agent');
  issue(dir, 'device', id);
  issue(dir, 'cloud', 'cloud-app');
  mkdirSync(dataDir);
  copyFileSync(join(dir, 'device.key'), join(dataDir, 'device.key'));
  copyFileSync(join(dir, 'device.crt'), join(dataDir, 'device.crt'));
  copyFileSync(join(dir, 'ca.crt'), join(dataDir, 'ca.crt'));

  const cloud = await mqtt.connectAsync({
    host: '127.0.0.1',
    port: m.port,
    protocol: 'mqtts',
    protocolVersion: 4,
    clientId: 'cloud-app',
    reconnectPeriod: 0,
    key: readFileSync(join(dir, 'cloud.key')),
    cert: readFileSync(join(dir, 'cloud.crt')),
    ca: readFileSync(join(dir, 'ca.crt')),
  });
  t.after(() => cloud.endAsync(true));
  const seen: Record<string, unknown[]> = {};
  cloud.on('message', (topic, payload) => (seen[topic] ??= []).push(JSON.parse(payload.toString())));
  await cloud.subscribeAsync(`devices/${id}/#`, { qos: 1 });

  let rebooted = 0;
  const agent = await startAgent({
    deviceId: id,
    dataDir,
    mqtt: { url: `mqtts://127.0.0.1:${m.port}` },
    timeSync: { waitOnConnectMs: 200 },
    logs: { level: 'error' },
  });
  agent.onCommand('reboot', { type: 'object', required: ['delayS'], properties: { delayS: { type: 'integer', minimum: 0, maximum: 60 } } }, () => {
    rebooted += 1;
    return { rebooting: true };
  });
  agent.onConfig({ type: 'object', properties: { intervalS: { type: 'integer', minimum: 1 } } }, () => undefined);
  await once(agent, 'connected');
  for (let n = 1; n <= 50; n += 1) await agent.send('env-sensor@2', { n });
  const telemetry = `devices/${id}/telemetry`;
  await until('50 readings at the cloud client', () => (seen[telemetry]?.length ?? 0) === 50);
  const first = seen[telemetry]?.[0] as TelemetryEnvelope;
  assert.equal(first.schema, 'env-sensor@2');
  assert.equal(first.seq, 1);
  assert.equal(first.boot, agent.boot);
  assert.ok(typeof first.ts === 'number' && typeof first.mono === 'number');

  const result = `devices/${id}/commands/reboot/result`;
  await cloud.publishAsync(`devices/${id}/commands/reboot`, JSON.stringify({ id: 'cmd-1', params: { delayS: 5 }, issuedAt: Date.now() }), { qos: 1 });
  await cloud.publishAsync(`devices/${id}/commands/reboot`, JSON.stringify({ id: 'cmd-2', params: { delayS: 500 }, issuedAt: Date.now() }), { qos: 1 });
  await until('two command results', () => (seen[result]?.length ?? 0) === 2);
  const [r1, r2] = seen[result] as CommandResult[];
  assert.equal(r1?.status, 'succeeded');
  assert.equal(r2?.status, 'rejected');
  assert.equal(r2?.reason, 'params_invalid');
  assert.equal(rebooted, 1);

  const reported = `devices/${id}/twin/reported`;
  const before = seen[reported]?.length ?? 0;
  await cloud.publishAsync(`devices/${id}/twin/desired`, JSON.stringify({ version: 3, config: { intervalS: 30 }, ts: Date.now() }), { qos: 1 });
  await until('a twin report', () => (seen[reported]?.length ?? 0) > before);
  const last = seen[reported]?.at(-1) as TwinReported;
  assert.deepEqual([last.version, last.status, last.config], [3, 'applied', { intervalS: 30 }]);
  assert.ok(
    (seen[`devices/${id}/events`] ?? []).some((e) => (e as { type: string }).type === 'boot'),
    'the boot event arrived',
  );
});
