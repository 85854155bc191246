import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { describe, it } from 'node:test';
import { type EnrolledDevice, connectDevice, enrollDevice } from '../../testing/devices.js';
import type { TestServer } from '../../testing/harness.js';
import { env, metric, setup } from '../../testing/telemetry.js';

/** Requests in the as-fast-as-it-can run: small in `npm test`, large in `npm run test:long`. */
const N = Math.ceil(Number(process.env.BULWARK_TEST_FLOOD_MESSAGES ?? 600) / 2);

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: { status?: string; error?: { code: string } };
}

/** A device's own HTTPS client: its key and certificate on `sockets` keep-alive connections. */
function deviceClient(t: Parameters<typeof setup>[0], s: TestServer, d: EnrolledDevice, sockets = 1) {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, key: d.keyPem, cert: d.certPem, ca: d.caPem });
  t.after(() => agent.destroy());
  return (body: string) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.server.deviceHttpPort, servername: 'localhost', path: '/v1/telemetry', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.once('error', reject);
      req.end(body);
    });
}

describe('device HTTPS message rate', () => {
  it('answers 429 with Retry-After past the burst, counts it, and takes the device back once it waited', async (t) => {
    const { s, admin } = await setup(t, { id: 'mqtt-0', config: { mqtt: { publishRatePerSecond: 1, publishBurst: 3 } } });
    const post = deviceClient(t, s, await enrollDevice(s, admin, 'h-1'));
    const answers: Answer[] = [];
    for (let i = 0; i < 4; i += 1) answers.push(await post(env(`h-${i}`, { temp_c: 20 })));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 429],
    );
    assert.equal(answers[3]?.retryAfter, '1');
    assert.equal(answers[3]?.body.error?.code, 'BULWARK_ERR_RATE_LIMITED');
    assert.equal(await metric(s, /bulwark_device_https_rate_limited_total (\d+)/), 1);
    assert.equal(await metric(s, /bulwark_device_https_requests_total\{route="POST \/v1\/telemetry",status="429"\} (\d+)/), 1);
    await new Promise((resolve) => setTimeout(resolve, Number(answers[3]?.retryAfter) * 1000));
    assert.equal((await post(env('h-after', { temp_c: 20 }))).status, 200, 'after Retry-After the device is served again');
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'h-1', limit: 10 })).length, 4);
  });

  it('shares one budget per device with MQTT: a device that spent it over MQTT gets 429 over HTTPS', async (t) => {
    const { s, admin } = await setup(t, { id: 'mqtt-0', config: { mqtt: { publishRatePerSecond: 1, publishBurst: 3 } } });
    const d = await enrollDevice(s, admin, 'both-1');
    const mqtt = await connectDevice(s, d);
    t.after(() => mqtt.end(true));
    for (let i = 0; i < 3; i += 1) await mqtt.publishAsync('devices/both-1/telemetry', env(`m-${i}`, { temp_c: 1 }), { qos: 1 });
    assert.equal((await deviceClient(t, s, d)(env('h-0', { temp_c: 1 }))).status, 429);
  });

  it(`holds a device sending ${N} requests back to back with default settings to its rate: the rest are 429 with Retry-After, every 200 stored`, async (t) => {
    const { s, admin } = await setup(t, { id: 'mqtt-0' });
    const post = deviceClient(t, s, await enrollDevice(s, admin, 'h-fast'), 8);
    const t0 = performance.now();
    const counts = { ok: 0, limited: 0 };
    let next = 0;
    // Eight connections of the same device, each sending its next request as soon as the last is answered.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < N) {
          const a = await post(env(`f-${next++}`, { temp_c: 20 }));
          if (a.status === 200) counts.ok += 1;
          else if (a.status === 429 && a.retryAfter) counts.limited += 1;
          else assert.fail(`unexpected ${a.status} ${JSON.stringify(a.body)}`);
        }
      }),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    console.log(`HTTPS: ${N} requests in ${elapsedS.toFixed(2)} s: ${counts.ok} stored, ${counts.limited} answered 429`);
    assert.ok(counts.ok <= 200 + 100 * elapsedS + 1, `at most the burst plus 100/s (${counts.ok} in ${elapsedS.toFixed(2)} s)`);
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'h-fast', limit: N + 10 })).length, counts.ok, 'every 200 is stored');
    assert.equal(await metric(s, /bulwark_device_https_rate_limited_total (\d+)/), counts.limited);
  });
});
