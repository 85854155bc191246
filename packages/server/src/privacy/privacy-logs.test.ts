import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { describe, it } from 'node:test';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { startTestServer } from '../testing/harness.js';

/** A schema with a value the platform must never write to a log: encrypted at rest, and bounded so that a bad value is refused. */
const METER = {
  $id: 'gas-meter@1',
  type: 'object',
  required: ['m3'],
  additionalProperties: false,
  properties: { m3: { type: 'number', 'x-unit': 'm3' }, pin: { type: 'string', maxLength: 12, 'x-sensitive': 'encrypt' } },
};
const DEVICE = 'meter-ab12';
const SECRET_OK = 'PIN4242XYZ';
const SECRET_BAD = 'PIN9999XYZ-TOO-LONG';

/** A real server writing its own JSON log lines at debug level into `lines`, one device connected over MQTT. */
async function start(t: TestContext, pseudonymise: string) {
  const lines: string[] = [];
  const s = await startTestServer(t, {
    config: { log: { level: 'debug' }, ...(pseudonymise ? { privacy: { pseudonymise } } : {}) },
    logDestination: { write: (line: string) => void lines.push(line) },
  });
  const admin = await s.tokenFor(s.adminKey);
  const user = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'site-owner-ann', role: 'viewer' } });
  assert.equal(user.status, 201, user.text);
  assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: METER })).status, 201);
  const device = await enrollDevice(s, admin, DEVICE, { owner: user.body.id, location: 'plant-north-hall-3' });
  const client = await connectDevice(s, device);
  t.after(() => client.end(true));
  return { s, admin, client, lines, owner: user.body.id as string };
}

/** A good reading, one the schema refuses (its sensitive value too long), one that is not JSON: all three reach the pipeline. */
async function send(x: Awaited<ReturnType<typeof start>>): Promise<void> {
  const topic = `devices/${DEVICE}/telemetry`;
  await x.client.publishAsync(topic, JSON.stringify({ id: 'r1', seq: 1, ts: Date.now(), schema: 'gas-meter@1', data: { m3: 12.5, pin: SECRET_OK } }), { qos: 1 });
  await x.client.publishAsync(topic, JSON.stringify({ id: 'r2', seq: 2, ts: Date.now(), schema: 'gas-meter@1', data: { m3: 13, pin: SECRET_BAD } }), { qos: 1 });
  await x.client.publishAsync(topic, `{"id":"r3","schema":"gas-meter@1","data":{"pin":"${SECRET_BAD}"`, { qos: 1 });
  await eventually(
    async () => (await x.s.api('GET', '/api/v1/dead-letters', { token: x.admin })).body as unknown[],
    (l) => l.length === 2,
  );
  const stored = await x.s.api('GET', `/api/v1/devices/${DEVICE}/telemetry`, { token: x.admin });
  assert.equal((stored.body as unknown[]).length, 1);
}

describe('log lines of a real server', () => {
  it('with privacy.pseudonymise=logs carry no device id, owner or location, only their pseudonyms; never a sensitive value', async (t) => {
    const x = await start(t, 'logs');
    await send(x);
    const page = await x.s.api('GET', `/api/v1/devices?limit=5&after=${DEVICE}`, { token: x.admin });
    assert.equal(page.status, 200, page.text);
    const pseudonym = await x.s.api('POST', '/api/v1/privacy/pseudonyms', { token: x.admin, body: { kind: 'devices', value: DEVICE } });
    assert.equal(pseudonym.status, 200, pseudonym.text);
    assert.match(pseudonym.body.pseudonym, /^p:dev:[0-9a-f]{32}$/);
    await x.s.server.stop();
    const text = x.lines.join('');
    for (const line of x.lines) assert.doesNotThrow(() => JSON.parse(line), line);
    for (const real of [DEVICE, x.owner, 'plant-north-hall-3', SECRET_OK, SECRET_BAD, 'PIN']) assert.equal(text.includes(real), false, `"${real}" in ${x.lines.find((l) => l.includes(real))}`);
    assert.ok(text.includes(pseudonym.body.pseudonym as string), "the device's lines name it by its pseudonym");
    assert.ok(
      x.lines.some((l) => l.includes(`"url":"/api/v1/devices/${String(pseudonym.body.pseudonym)}/telemetry"`)),
      'request URLs name the device by its pseudonym',
    );
    assert.ok(
      x.lines.some((l) => l.includes(`"deviceId":"${String(pseudonym.body.pseudonym)}"`)),
      "the gateway's lines name the device by its pseudonym",
    );
    assert.ok(
      x.lines.some((l) => l.includes(`after=${encodeURIComponent(String(pseudonym.body.pseudonym))}`)),
      "a device list's paging cursor is the pseudonym",
    );
  });

  it('through a logger handed in (deps.logger) never change the request a route handles', async (t) => {
    const lines: string[] = [];
    const s = await startTestServer(t, {
      config: { log: { level: 'debug' }, privacy: { pseudonymise: 'logs' } },
      logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }),
    });
    const admin = await s.tokenFor(s.adminKey);
    const device = await enrollDevice(s, admin, DEVICE);
    const client = await connectDevice(s, device);
    t.after(() => client.end(true));
    await client.publishAsync(`devices/${DEVICE}/telemetry`, '{"not json', { qos: 1 });
    await eventually(
      async () => (await s.api('GET', '/api/v1/dead-letters', { token: admin })).body as unknown[],
      (l) => l.length === 1,
    );
    const mine = await s.api('GET', `/api/v1/dead-letters?device=${DEVICE}`, { token: admin });
    assert.equal(mine.status, 200, mine.text);
    assert.equal((mine.body as unknown[]).length, 1, 'the route filtered by the real device id, not by its pseudonym');
    const alerts = await s.api('GET', `/api/v1/alerts?deviceId=${DEVICE}`, { token: admin });
    assert.equal(alerts.status, 200, alerts.text);
    await s.server.stop();
    assert.equal(
      lines.some((l) => l.includes('Reply was already sent')),
      false,
      lines.find((l) => l.includes('Reply was already sent')),
    );
    assert.ok(
      lines.some((l) => l.includes('"deviceId":"p:dev:')),
      "the fields of the platform's own log calls are pseudonymised",
    );
  });

  it('without it name the device, and still never carry a sensitive value', async (t) => {
    const x = await start(t, '');
    await send(x);
    await x.s.server.stop();
    const text = x.lines.join('');
    assert.ok(text.includes(DEVICE), 'the device id is logged when pseudonyms are off');
    for (const secret of [SECRET_OK, SECRET_BAD, 'PIN']) assert.equal(text.includes(secret), false, `"${secret}" in ${x.lines.find((l) => l.includes(secret))}`);
  });
});
