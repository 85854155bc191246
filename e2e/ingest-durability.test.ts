import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { connect } from '../packages/server/src/testing/devices.js';
import { runCli, tempDir } from './support/cli.js';
import { filesIn } from './support/devices.js';
import { startServer } from './support/server.js';

const SCHEMA = { $id: 'count@1', type: 'object', properties: { n: { type: 'integer', 'x-unit': '1' } }, required: ['n'] };

async function api(url: string, key: string, method: string, path: string, body?: unknown) {
  const token = (await (await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) })).json()) as { accessToken: string };
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token.accessToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return res.json() as Promise<unknown>;
}

it('loses no acknowledged message when the server is killed with SIGKILL mid-stream', async (t) => {
  const dir = tempDir(t, 'bulwark-durability-');
  const env = { BULWARK_CLI_CONFIG: join(dir, 'cli.json') };
  const serverEnv = { ...env, BULWARK_MQTT_PUBLISH_RATE_PER_SECOND: '100000', BULWARK_MQTT_PUBLISH_BURST: '100000' };
  const first = await startServer(t, join(dir, 'data'), { env: serverEnv });
  const adminKey = first.adminKey as string;
  assert.equal((await runCli(t, ['login', '--url', first.url, '--key', adminKey], { env })).code, 0);
  await api(first.url, adminKey, 'POST', '/api/v1/schemas', SCHEMA);
  assert.equal((await runCli(t, ['devices', 'create', 'meter-1'], { env })).code, 0);
  const files = filesIn(join(dir, 'meter-1'));
  assert.equal((await runCli(t, ['devices', 'enroll', 'meter-1', '--out', files.dir], { env })).code, 0);

  const client = await connect({
    host: '127.0.0.1',
    port: first.mqttPort ?? 0,
    protocol: 'mqtts',
    protocolVersion: 4,
    clientId: 'meter-1',
    reconnectPeriod: 0,
    key: readFileSync(files.key, 'utf8'),
    cert: readFileSync(files.cert, 'utf8'),
    ca: readFileSync(files.ca, 'utf8'),
  });
  t.after(() => client.end(true));
  const acked: string[] = [];
  const killAfter = 300;
  // Several publishes in flight at once, as a real device streams; the kill lands among them.
  const inFlight = 8;
  let next = 0;
  let killed = false;
  // mqtt.js leaves in-flight publishes pending when the connection drops; the close ends them here.
  const connectionClosed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
  const worker = async () => {
    while (!killed) {
      const id = `m-${next++}`;
      const publish = client.publishAsync('devices/meter-1/telemetry', JSON.stringify({ id, seq: next, ts: Date.now(), schema: 'count@1', data: { n: next } }), { qos: 1 });
      const outcome = await Promise.race([
        publish.then(
          () => 'acked' as const,
          () => 'failed' as const,
        ),
        connectionClosed,
      ]);
      if (outcome !== 'acked') return;
      if (killed) return;
      acked.push(id);
      if (acked.length === killAfter) {
        killed = true;
        first.process.child.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  assert.ok(killed, `the stream ended before the kill, after ${acked.length} acknowledgements`);
  const ended = await first.process.closed;
  assert.equal(ended.signal, 'SIGKILL');

  const second = await startServer(t, join(dir, 'data'), { env: serverEnv });
  const stored = (await api(second.url, adminKey, 'GET', '/api/v1/devices/meter-1/telemetry?limit=10000')) as { msgId: string }[];
  const ids = new Set(stored.map((r) => r.msgId));
  const lost = acked.filter((id) => !ids.has(id));
  console.log(`acknowledged before the kill: ${acked.length}; stored after restart: ${ids.size}; acknowledged but lost: ${lost.length}`);
  assert.deepEqual(lost, []);
  assert.ok(acked.length >= killAfter);
});
