import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { describePg, freshPgSchema } from '../testing/pg.js';
import { tempDir } from '../testing/harness.js';
import { env, metric, setup } from '../testing/telemetry.js';
import { type ReceivedDelivery, receiverCertificate, startReceiver } from '../testing/webhook-receiver.js';
import { verifySignature } from './index.js';

/**
 * The receiver outage of the failure-and-recovery test: short in `npm test`,
 * BULWARK_TEST_WEBHOOK_OUTAGE_MS=30000 in `npm run test:long`.
 */
const OUTAGE_MS = Number(process.env.BULWARK_TEST_WEBHOOK_OUTAGE_MS ?? 2000);

/** Delivery fast enough for a test: retries every 100 ms to 1 s, never given up. */
const fast = { allowHttp: true, allowPrivateTargets: true, retryBaseMs: 100, retryMaxMs: 1000, pollIntervalMs: 100, batchMaxReadings: 10, maxAttempts: 1000 };

/** Reading ids per device in the order they first arrived. */
function firstArrivals(received: readonly ReceivedDelivery[]): Map<string, string[]> {
  const seen = new Set<string>();
  const byDevice = new Map<string, string[]>();
  for (const d of received) {
    for (const r of d.body.readings) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      byDevice.set(r.deviceId, [...(byDevice.get(r.deviceId) ?? []), r.id]);
    }
  }
  return byDevice;
}

describe('webhook delivery through a real receiver', () => {
  it(`a receiver that answers 500 for ${OUTAGE_MS} ms then recovers gets every reading, in order per device; redeliveries carry the same ids`, { timeout: OUTAGE_MS + 60_000 }, async (t) => {
    const receiver = await startReceiver(t);
    receiver.answer(500);
    const { s, admin, client } = await setup(t, { config: { webhooks: fast } });
    const second = await connectDevice(s, await enrollDevice(s, admin, 'sensor-2'));
    t.after(() => second.end(true));
    const created = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'outage', url: receiver.url } });
    assert.equal(created.status, 201, created.text);
    const { id, secret } = created.body as { id: string; secret: string };
    assert.match(secret, /^whsec_/);

    // Readings keep coming through the outage and after it.
    const sent = new Map<string, string[]>([
      ['sensor-1', []],
      ['sensor-2', []],
    ]);
    const started = Date.now();
    const rounds = 12;
    for (let i = 0; i < rounds; i += 1) {
      for (const [device, c] of [
        ['sensor-1', client],
        ['sensor-2', second],
      ] as const) {
        await c.publishAsync(`devices/${device}/telemetry`, env(`${device}-${i}`, { temp_c: 20 + i }), { qos: 1 });
        sent.get(device)?.push(`${device}/${device}-${i}`);
      }
      if (i === rounds / 2) {
        // The second half is sent after the receiver is back.
        await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - started))));
        receiver.answer(200);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = [...sent.values()].flat().sort();
    const distinct = async () => [...firstArrivals(receiver.received).values()].flat().sort();
    await eventually(distinct, (ids) => ids.length === all.length, 20_000 + OUTAGE_MS).catch(async (err: unknown) => {
      // What the subscription says, beside what the receiver saw, to tell a stuck cursor from a paused subscription.
      const state = await s.api('GET', `/api/v1/webhooks/${id}`, { token: admin });
      throw new Error(`${(err as Error).message}; subscription ${state.text}; ${receiver.received.length} requests`);
    });

    const arrivals = firstArrivals(receiver.received);
    assert.deepEqual([...arrivals.values()].flat().sort(), all, 'the distinct ids received are the ids sent');
    for (const [device, ids] of sent) assert.deepEqual(arrivals.get(device), ids, `${device}: in the order sent`);
    const failed = receiver.received.filter((d) => d.status === 500);
    assert.ok(failed.length >= 2, `the outage saw retries (${failed.length} failed attempts)`);
    // A batch retried is the same batch: same delivery id, same readings, counted attempts.
    const byDelivery = new Map<string, ReceivedDelivery[]>();
    for (const d of receiver.received) byDelivery.set(d.body.id, [...(byDelivery.get(d.body.id) ?? []), d]);
    const retried = [...byDelivery.values()].filter((ds) => ds.length > 1);
    assert.ok(retried.length >= 1, 'at least one batch was delivered more than once');
    for (const ds of retried) {
      for (const d of ds)
        assert.deepEqual(
          d.body.readings.map((r) => r.id),
          ds[0]?.body.readings.map((r) => r.id),
        );
      assert.deepEqual(
        ds.map((d) => d.headers['bulwark-delivery-attempt']),
        ds.map((_, i) => String(i + 1)),
      );
      assert.equal(ds[0]?.headers['bulwark-delivery-id'], ds[0]?.body.id);
    }
    for (const d of receiver.received) {
      assert.equal(d.headers['bulwark-webhook-id'], id);
      assert.deepEqual(verifySignature(secret, String(d.headers['bulwark-signature']), d.raw, Date.now()), { ok: true, t: Number(/t=(\d+)/.exec(String(d.headers['bulwark-signature']))?.[1]) });
    }
    const shown = await s.api('GET', `/api/v1/webhooks/${id}`, { token: admin });
    assert.equal(shown.body.state, 'active');
    assert.equal(shown.body.delivered, all.length);
    assert.equal(shown.body.lag, 0);
    assert.equal(shown.body.pending, null);
    assert.ok((await metric(s, /bulwark_webhook_deliveries_total\{result="failed"\} (\d+)/)) >= failed.length);
  });

  it('delivers over HTTPS to a receiver whose certificate comes from the CA in webhooks.caFile', async (t) => {
    const ca = receiverCertificate(tempDir(t));
    const receiver = await startReceiver(t, ca);
    const { s, admin, client } = await setup(t, { config: { webhooks: { ...fast, allowHttp: false, caFile: ca.caFile } } });
    const created = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'tls', url: receiver.url, filter: { schemaIds: ['env-sensor@1'] } } });
    assert.equal(created.status, 201, created.text);
    const arrived = receiver.next();
    await client.publishAsync('devices/sensor-1/telemetry', env('tls-1', { temp_c: 21 }), { qos: 1 });
    const d = await arrived;
    assert.deepEqual(
      d.body.readings.map((r) => r.id),
      ['sensor-1/tls-1'],
    );
    assert.equal(d.body.readings[0]?.data.temp_c, 21);
    assert.ok(verifySignature(created.body.secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok);
  });

  it('without the CA the same receiver is not trusted: the batch is retried, not delivered', async (t) => {
    const ca = receiverCertificate(tempDir(t));
    const receiver = await startReceiver(t, ca);
    const { s, admin } = await setup(t, { config: { webhooks: { ...fast, allowHttp: false } } });
    const created = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'untrusted', url: receiver.url } });
    const test = await s.api('POST', `/api/v1/webhooks/${created.body.id}/test`, { token: admin, body: {} });
    assert.equal(test.status, 200, test.text);
    assert.equal(test.body.ok, false);
    assert.match(test.body.error, /certificate/i);
    assert.equal(receiver.received.length, 0);
  });
});

describePg('webhook delivery from a node on PostgreSQL', (url) => {
  it('the feed trigger fires for the batch statement, and a receiver gets every reading in order', { timeout: 60_000 }, async (t) => {
    const receiver = await startReceiver(t);
    const { s, admin, client } = await setup(t, { config: { store: url, webhooks: fast }, pgSchema: await freshPgSchema(t, url) });
    const created = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'pg', url: receiver.url } });
    assert.equal(created.status, 201, created.text);
    const sent = Array.from({ length: 25 }, (_, i) => `sensor-1/pg-${i}`);
    await Promise.all(sent.map((id) => client.publishAsync('devices/sensor-1/telemetry', env(id.split('/')[1] as string, { temp_c: 20 }), { qos: 1 })));
    await eventually(
      async () => firstArrivals(receiver.received).get('sensor-1') ?? [],
      (ids) => ids.length === sent.length,
      20_000,
    );
    const stored = (await s.api('GET', '/api/v1/devices/sensor-1/telemetry?limit=100', { token: admin })).body as { msgId: string }[];
    assert.deepEqual(new Set(firstArrivals(receiver.received).get('sensor-1')), new Set(stored.map((r) => `sensor-1/${r.msgId}`)));
  });
});
