import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { parseJson, runCli, spawnCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/**
 * Twin, commands, health and logs through the real `bulwark` command, against a real
 * server on port 0 with an mqtt.js device over mutual TLS answering on the other side.
 */
it('sets the twin, runs a command to its end, and shows health and logs from the command line', { timeout: 120_000 }, async (t) => {
  const s = await startTestServer(t);
  const admin = await s.tokenFor(s.adminKey);
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });
  const device = await connectDevice(s, await enrollDevice(s, admin, 'edge-1'));
  t.after(() => device.end(true));
  // The device: applies any desired config, runs `ping`, streams one log line when asked.
  device.on('message', (topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (topic.endsWith('/twin/desired')) device.publish('devices/edge-1/twin/reported', JSON.stringify({ version: m.version, status: 'applied', config: m.config, ts: Date.now() }), { qos: 1 });
    if (topic.endsWith('/commands/ping')) device.publish('devices/edge-1/commands/ping/result', JSON.stringify({ id: m.id, status: 'succeeded', output: { pong: m.params.n }, ts: Date.now() }), { qos: 1 });
    if (topic.endsWith('/commands/logs.stream')) device.publish('devices/edge-1/logs', JSON.stringify({ entries: [{ ts: Date.now(), level: 'warn', msg: 'disk almost full' }] }), { qos: 1 });
  });
  await device.subscribeAsync(['devices/edge-1/twin/desired', 'devices/edge-1/commands/+'], { qos: 1 });
  await device.publishAsync('devices/edge-1/health', JSON.stringify({ ts: Date.now(), boot: 'b1', uptimeS: 42, restartLoop: true, recentRestarts: 7 }), { qos: 1 });

  const file = join(tempDir(t), 'config.json');
  writeFileSync(file, JSON.stringify({ sampleRateS: 10 }));
  const set = await bulwark(['devices', 'twin', 'edge-1', '--set', file, '--if-version', '0', '--json']);
  assert.equal(set.code, 0, show(set));
  assert.equal(parseJson(set).desired.version, 1);
  const conflict = await bulwark(['devices', 'twin', 'edge-1', '--set', '{"sampleRateS": 5}', '--if-version', '0']);
  assert.equal(conflict.code, 1, show(conflict));
  assert.match(conflict.stderr, /BULWARK_ERR_VERSION_CONFLICT/);
  const shown = await bulwark(['devices', 'twin', 'edge-1']);
  assert.match(shown.stdout, /in sync\s+yes/, show(shown));

  const ran = await bulwark(['devices', 'command', 'edge-1', 'ping', '--params', '{"n": 7}', '--wait', '--json']);
  assert.equal(ran.code, 0, show(ran));
  assert.deepEqual([parseJson(ran).status, parseJson(ran).output], ['succeeded', { pong: 7 }]);
  const refused = await bulwark(['devices', 'command', 'nobody', 'ping']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /BULWARK_ERR_NOT_FOUND/);
  const listed = parseJson(await bulwark(['devices', 'commands', 'edge-1', '--json']));
  assert.deepEqual(
    listed.map((c: { name: string }) => c.name),
    ['ping'],
  );

  const health = await bulwark(['devices', 'health', 'edge-1']);
  assert.equal(health.code, 0, show(health));
  assert.match(health.stdout, /RESTART LOOP/);
  assert.match(health.stdout, /uptimeS\s+42/);

  const follow = spawnCli(t, ['devices', 'logs', 'edge-1', '--level', 'warn', '--duration', '1'], { env });
  const followed = await follow.closed;
  assert.equal(followed.code, 0, show(followed));
  assert.match(followed.stdout, /warn\s+disk almost full/);
  const logs = parseJson(await bulwark(['devices', 'logs', 'edge-1', '--json']));
  assert.deepEqual(
    logs.map((e: { msg: string }) => e.msg),
    ['disk almost full'],
  );
  const usage = await bulwark(['devices', 'logs', 'edge-1', '--duration', '99999']);
  assert.equal(usage.code, 2, 'a duration past an hour is a usage error');
});
