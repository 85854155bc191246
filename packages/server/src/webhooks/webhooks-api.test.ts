import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from '../testing/harness.js';
import { eventually } from '../testing/eventually.js';
import { env, metric, setup } from '../testing/telemetry.js';
import { startReceiver } from '../testing/webhook-receiver.js';
import { verifySignature } from './index.js';

describe('/api/v1/webhooks', () => {
  it('refuses non-https URLs and loopback, private and link-local targets by default, counted and audited', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const create = (url: string) => s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'x', url } });
    const cases: [string, string, string][] = [
      ['http://hooks.example.com/x', 'BULWARK_ERR_WEBHOOK_URL_REFUSED', 'not_https'],
      ['https://127.0.0.1:9/x', 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', 'loopback'],
      ['https://localhost/x', 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', 'loopback'],
      ['https://[::1]/x', 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', 'loopback'],
      ['https://10.0.0.8/x', 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', 'private'],
      ['https://169.254.169.254/latest/meta-data', 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED', 'link_local'],
      ['https://user:pw@hooks.example.com/x', 'BULWARK_ERR_WEBHOOK_URL_REFUSED', 'credentials'],
    ];
    for (const [url, code, reason] of cases) {
      const res = await create(url);
      assert.equal(res.status, 400, `${url}: ${res.text}`);
      assert.equal(res.body.error.code, code, url);
      assert.equal(res.body.error.details.reason, reason, url);
    }
    assert.equal(await metric(s, /bulwark_webhook_targets_refused_total\{reason="loopback",at="create"\} (\d+)/), 3);
    assert.deepEqual((await s.api('GET', '/api/v1/webhooks', { token: admin })).body, []);
    const audit = await s.api('GET', '/api/v1/audit?action=webhook.create&limit=50', { token: admin });
    assert.ok(audit.text.includes('"link_local"'), 'the refusal reason is in the audit log');
  });

  it('creates, lists, pauses, resumes, rotates, tests and deletes; the secret is shown only at creation and rotation', async (t) => {
    const receiver = await startReceiver(t);
    const s = await startTestServer(t, { config: { webhooks: { allowHttp: true, allowPrivateTargets: true, pollIntervalMs: 50 } } });
    const admin = await s.tokenFor(s.adminKey);
    const created = await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'crm', url: receiver.url, filter: { tags: ['north'], schemaIds: ['env@1'] } } });
    assert.equal(created.status, 201, created.text);
    const { id, secret } = created.body;
    assert.deepEqual(created.body.filter, { schemaIds: ['env@1'], deviceIds: [], tags: ['north'] });
    const listed = await s.api('GET', '/api/v1/webhooks', { token: admin });
    assert.equal(listed.body.length, 1);
    assert.equal(listed.body[0].secret, undefined);
    assert.ok(!listed.text.includes(secret));
    assert.equal(listed.body[0].state, 'active');
    assert.equal(listed.body[0].lag, 0);

    const arrived = receiver.next();
    const test = await s.api('POST', `/api/v1/webhooks/${id}/test`, { token: admin, body: {} });
    assert.equal(test.status, 200, test.text);
    assert.equal(test.body.ok, true);
    const d = await arrived;
    assert.equal(d.body.test, true);
    assert.ok(verifySignature(secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok);

    const paused = await s.api('POST', `/api/v1/webhooks/${id}/pause`, { token: admin, body: { reason: 'receiver maintenance' } });
    assert.equal(paused.body.state, 'paused');
    assert.equal(paused.body.pausedReason, 'receiver maintenance');
    const resumed = await s.api('POST', `/api/v1/webhooks/${id}/resume`, { token: admin, body: {} });
    assert.equal(resumed.body.state, 'active');
    assert.equal(resumed.body.pausedReason, null);

    const rotated = await s.api('POST', `/api/v1/webhooks/${id}/rotate-secret`, { token: admin, body: {} });
    assert.match(rotated.body.secret, /^whsec_/);
    assert.notEqual(rotated.body.secret, secret);
    const next = receiver.next();
    await s.api('POST', `/api/v1/webhooks/${id}/test`, { token: admin, body: {} });
    const after = await next;
    assert.equal(verifySignature(secret, String(after.headers['bulwark-signature']), after.raw, Date.now()).ok, false, 'the old secret no longer signs');
    assert.ok(verifySignature(rotated.body.secret, String(after.headers['bulwark-signature']), after.raw, Date.now()).ok);

    const patched = await s.api('PATCH', `/api/v1/webhooks/${id}`, { token: admin, body: { name: 'crm-2', url: 'https://127.0.0.1:1/elsewhere' } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.name, 'crm-2');
    assert.equal((await s.api('GET', `/api/v1/webhooks/${id}/dead-letters`, { token: admin })).body.length, 0);
    assert.equal((await s.api('DELETE', `/api/v1/webhooks/${id}`, { token: admin })).status, 204);
    assert.equal((await s.api('GET', `/api/v1/webhooks/${id}`, { token: admin })).status, 404);

    const actions = (await s.api('GET', '/api/v1/audit?limit=100', { token: admin })).body.map((e: { action: string }) => e.action);
    for (const a of ['webhook.create', 'webhook.test', 'webhook.pause', 'webhook.resume', 'webhook.rotate_secret', 'webhook.update', 'webhook.delete']) assert.ok(actions.includes(a), a);
    const audited = (await s.api('GET', '/api/v1/audit?limit=100', { token: admin })).text;
    assert.ok(!audited.includes(secret) && !audited.includes(rotated.body.secret), 'no secret in the audit log');
  });

  it('a batch that fails every attempt is dead-lettered and the webhook pauses itself; the letter replays with the same ids', async (t) => {
    const receiver = await startReceiver(t);
    receiver.answer(503);
    const { s, admin, client } = await setup(t, { config: { webhooks: { allowHttp: true, allowPrivateTargets: true, maxAttempts: 2, retryBaseMs: 10, retryMaxMs: 20, pollIntervalMs: 50 } } });
    const { id } = (await s.api('POST', '/api/v1/webhooks', { token: admin, body: { name: 'flaky', url: receiver.url } })).body;
    await client.publishAsync('devices/sensor-1/telemetry', env('dl-1', { temp_c: 20 }), { qos: 1 });
    const paused = await eventually(
      async () => (await s.api('GET', `/api/v1/webhooks/${id}`, { token: admin })).body,
      (w) => w.state === 'paused',
    );
    assert.match(paused.pausedReason, /failed 2 attempts \(last: HTTP 503/);
    assert.match(paused.lastError, /^HTTP 503/);
    const letters = (await s.api('GET', `/api/v1/webhooks/${id}/dead-letters`, { token: admin })).body;
    assert.deepEqual(
      letters.map((l: { readingIds: string[]; attempts: number }) => [l.readingIds, l.attempts]),
      [[['sensor-1/dl-1'], 2]],
    );
    const audit = (await s.api('GET', '/api/v1/audit?action=webhook.pause', { token: admin })).body;
    assert.equal(audit[0]?.actor, 'system');

    receiver.answer(200);
    const replayed = await s.api('POST', `/api/v1/webhooks/${id}/dead-letters/${letters[0].id}/replay`, { token: admin, body: {} });
    assert.equal(replayed.status, 200, replayed.text);
    assert.equal(replayed.body.ok, true);
    const last = receiver.received.at(-1);
    assert.equal(last?.body.id, letters[0].id, 'the same batch id');
    assert.deepEqual(
      last?.body.readings.map((r) => r.id),
      ['sensor-1/dl-1'],
    );
    assert.equal(last?.headers['bulwark-delivery-attempt'], '3');
    const after = (await s.api('GET', `/api/v1/webhooks/${id}/dead-letters`, { token: admin })).body;
    assert.match(after[0].replayResult, /^delivered \(HTTP 200\)/);

    // Resumed, it goes on after the dead letter.
    assert.equal((await s.api('POST', `/api/v1/webhooks/${id}/resume`, { token: admin, body: {} })).body.state, 'active');
    const next = receiver.next();
    await client.publishAsync('devices/sensor-1/telemetry', env('dl-2', { temp_c: 21 }), { qos: 1 });
    assert.deepEqual(
      (await next).body.readings.map((r) => r.id),
      ['sensor-1/dl-2'],
    );
  });
});
