import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../testing/eventually.js';
import { env, setup } from '../testing/telemetry.js';
import { startReceiver } from '../testing/webhook-receiver.js';
import { verifySignature } from '../webhooks/index.js';

const config = {
  privacy: { pseudonymise: 'webhooks' },
  webhooks: { allowHttp: true, allowPrivateTargets: true, pollIntervalMs: 100, retryBaseMs: 100, retryMaxMs: 500 },
  alerts: { notifyPollIntervalMs: 100, retryBaseMs: 100, retryMaxMs: 500, groupWaitMs: 0 },
};

describe('webhooks with privacy.pseudonymise=webhooks', () => {
  it('a real receiver gets readings and alert notifications naming the device by its pseudonym, signed over the body sent', async (t) => {
    const receiver = await startReceiver(t);
    const { s, admin, client } = await setup(t, { config });
    const pseudonym = (await s.api('POST', '/api/v1/privacy/pseudonyms', { token: admin, body: { kind: 'devices', value: 'sensor-1' } })).body.pseudonym as string;
    assert.match(pseudonym, /^p:dev:[0-9a-f]{32}$/);
    const hook = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'lake', url: receiver.url } });
    assert.equal(hook.status, 201, hook.text);
    const channel = await s.api('POST', '/api/v1/alerts/channels', { token: admin, body: { name: 'on-call', url: receiver.url } });
    assert.equal(channel.status, 201, channel.text);
    const rule = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'Hot now', condition: { kind: 'threshold', field: 'temp_c', op: '>=', value: 100 } } });
    assert.equal(rule.status, 201, rule.text);

    await client.publishAsync('devices/sensor-1/telemetry', env('r-1', { temp_c: 101 }), { qos: 1 });
    const all = await eventually(
      async () => receiver.received,
      (r) => r.some((d) => d.raw.includes('"readings"')) && r.some((d) => d.raw.includes('alert.fired')),
      15_000,
    );
    const secrets = { [hook.body.id as string]: hook.body.secret as string, [channel.body.id as string]: channel.body.secret as string };
    for (const d of all) {
      assert.equal(d.raw.includes('sensor-1'), false, d.raw);
      const secret = secrets[String(d.headers['bulwark-webhook-id'])];
      assert.ok(secret, 'delivered by a known subscription or channel');
      assert.deepEqual(verifySignature(secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok, true, 'the signature covers the body as sent');
    }
    const readings = all.find((d) => d.raw.includes('"readings"'))?.body.readings ?? [];
    assert.deepEqual(
      readings.map((r) => [r.id, r.deviceId, r.data]),
      [[`${pseudonym}/r-1`, pseudonym, { temp_c: 101 }]],
    );
    const fired = JSON.parse(all.find((d) => d.raw.includes('alert.fired'))?.raw ?? '{}') as { alert: { deviceId: string }; text: string };
    assert.equal(fired.alert.deviceId, pseudonym);
    assert.match(fired.text, new RegExp(`on ${pseudonym}:`));
    const stored = await s.api('GET', '/api/v1/alerts', { token: admin });
    assert.equal((stored.body as { deviceId: string }[])[0]?.deviceId, 'sensor-1', 'the platform itself keeps the real id');
  });
});
