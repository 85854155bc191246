import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { send } from '../testing/device-messages.js';
import { type EnrolledDevice, closed, connect, connectDevice, enrollDevice, makeDeviceKeys, tlsOptions } from '../testing/devices.js';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { env, schema } from '../testing/telemetry.js';
import { type SignedReceipt, verifyReceipt } from './index.js';

const health = (uptimeS: number) => ({ ts: Date.now(), boot: 'b1', uptimeS, cpuLoad1: 0.2, memUsedBytes: 1000, memTotalBytes: 4000 });

/** A device with something of every kind held about it: readings, a dead letter, health, an event, a twin and a command. */
async function busyDevice(s: TestServer, admin: string, id: string, attrs: Record<string, unknown> = {}): Promise<{ device: EnrolledDevice; client: MqttClient }> {
  const device = await enrollDevice(s, admin, id, attrs);
  const client = await connectDevice(s, device);
  for (let i = 0; i < 3; i += 1) await send(client, `devices/${id}/telemetry`, env(`m-${i}`, { temp_c: 20 + i }));
  await send(client, `devices/${id}/telemetry`, env('bad', { temp_c: 'hot' }));
  await send(client, `devices/${id}/health`, health(60));
  await send(client, `devices/${id}/events`, { id: 'ev-1', type: 'boot', ts: 1 });
  assert.equal((await s.api('PUT', `/api/v1/devices/${id}/twin/desired`, { token: admin, body: { config: { intervalS: 30 } } })).status, 200);
  assert.equal((await s.api('POST', `/api/v1/devices/${id}/commands/blink`, { token: admin, body: { params: {} } })).status, 201);
  return { device, client };
}

async function principal(s: TestServer, admin: string, body: Record<string, unknown>): Promise<{ id: string; token: string }> {
  const p = await s.api('POST', '/api/v1/users', { token: admin, body });
  assert.equal(p.status, 201, p.text);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: p.body.id } });
  return { id: p.body.id, token: await s.tokenFor(key.body.key) };
}

describe('end of life', () => {
  it('decommissions with erase as one operation: revoked, disconnected, nothing left, and a signed receipt in the audit log and a file', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const { device, client } = await busyDevice(s, admin, 'eol-1');
    t.after(() => client.end(true));
    // Remote logs, held in memory for live readers (a log-stream window, then two lines from the device).
    assert.equal((await s.api('POST', '/api/v1/devices/eol-1/logs/stream', { token: admin, body: { level: 'info', durationS: 60 } })).status, 201);
    await send(client, 'devices/eol-1/logs', { entries: [1, 2].map((i) => ({ ts: Date.now(), level: 'info', msg: `line ${i}` })) });
    assert.equal((await s.api('GET', '/api/v1/devices/eol-1/logs', { token: admin })).body.entries.length, 2);
    const gone = closed(client);

    const res = await s.api('POST', '/api/v1/devices/eol-1/decommission', { token: admin, body: { data: 'erase' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, 'decommissioned');
    const receipt = res.body.receipt as SignedReceipt;
    assert.deepEqual([receipt.kind, receipt.policy, receipt.revoked], ['decommission', 'erase', [device.serial]]);
    assert.deepEqual(receipt.cancelled, { jobEntries: 0, commands: 2 }, 'blink and logs.stream were waiting');
    const { telemetry, deadLetters, health: h, events, twin, commands, feed, logs } = receipt.data;
    assert.deepEqual({ telemetry, feed, deadLetters, health: h, events, twin, commands, logs }, { telemetry: 3, feed: 3, deadLetters: 1, health: 1, events: 1, twin: 1, commands: 2, logs: 2 });
    await gone;

    // Nothing is left for the device, and it cannot come back.
    const read = async (path: string) => (await s.api('GET', `/api/v1/devices/eol-1${path}`, { token: admin })).body;
    assert.deepEqual(await read('/telemetry'), []);
    assert.equal((await read('/health')).latest, null);
    assert.deepEqual(await read('/events'), []);
    assert.deepEqual(await read('/commands'), []);
    assert.deepEqual((await read('/logs')).entries, []);
    assert.equal((await read('/twin')).desired, null);
    assert.deepEqual((await s.api('GET', '/api/v1/dead-letters?device=eol-1', { token: admin })).body, []);
    await assert.rejects(connectDevice(s, device), 'its certificate is revoked');

    // The receipt checks out against the published key, and a changed one does not.
    const key = (await s.api('GET', '/api/v1/system/receipt-key', { token: admin })).body;
    assert.equal(key.keyId, receipt.keyId);
    assert.equal(verifyReceipt(receipt, key.publicKeyPem), true);
    assert.equal(verifyReceipt({ ...receipt, data: { ...receipt.data, telemetry: 0 } }, key.publicKeyPem), false);
    const file = join(s.dataDir, 'receipts', `${receipt.id}.json`);
    assert.ok(existsSync(file));
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), receipt);
    // The audit chain keeps the receipt's id and hash, not what it counts.
    const entry = ((await s.api('GET', '/api/v1/audit?action=device.decommission.receipt', { token: admin })).body as { target: string; details: Record<string, unknown> }[])[0];
    assert.equal(entry?.target, 'eol-1');
    assert.deepEqual(Object.keys(entry?.details ?? {}).sort(), ['keyId', 'policy', 'receiptId', 'receiptSha256']);

    // Bad input: clear errors, nothing done.
    const again = await s.api('POST', '/api/v1/devices/eol-1/decommission', { token: admin, body: { data: 'erase' } });
    assert.deepEqual([again.status, again.body.error.code], [409, 'BULWARK_ERR_LIFECYCLE']);
    assert.match(again.body.error.message, /already decommissioned/);
    assert.equal((await s.api('POST', '/api/v1/devices/nobody/decommission', { token: admin, body: {} })).status, 404);
    assert.equal((await s.api('POST', '/api/v1/devices/eol-1/decommission', { token: admin, body: { data: 'shred' } })).status, 400);
  });

  it('answers an erasure request for a device that stays in service, pseudonymising its readings', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const { client } = await busyDevice(s, admin, 'eol-2');
    t.after(() => client.end(true));
    const res = await s.api('POST', '/api/v1/devices/eol-2/erase', { token: admin, body: { data: 'pseudonymise' } });
    assert.equal(res.status, 200, res.text);
    const receipt = res.body.receipt as SignedReceipt;
    assert.deepEqual([receipt.kind, receipt.revoked, receipt.data.telemetry], ['erasure', [], 3]);
    assert.match(receipt.pseudonym ?? '', /^anon-[0-9a-f]{24}$/);
    assert.deepEqual((await s.api('GET', '/api/v1/devices/eol-2/telemetry', { token: admin })).body, []);
    // The readings are still there for the fleet's statistics, under the pseudonym.
    const exported = await s.api('GET', `/api/v1/telemetry/export?schema=env-sensor@1&since=0&until=${Date.now() + 60_000}`, { token: admin });
    assert.deepEqual(
      [
        ...new Set(
          exported.text
            .trim()
            .split('\n')
            .map((l) => (JSON.parse(l) as { deviceId: string }).deviceId),
        ),
      ],
      [receipt.pseudonym],
    );
    assert.equal((await s.api('GET', '/api/v1/devices/eol-2', { token: admin })).body.state, 'active', 'still in service');
    await send(client, 'devices/eol-2/telemetry', env('after', { temp_c: 25 }));
    assert.equal((await s.api('GET', '/api/v1/devices/eol-2/telemetry', { token: admin })).body.length, 1, 'and still sending');
    assert.equal((await s.api('POST', '/api/v1/devices/eol-2/erase', { token: admin, body: { data: 'keep' } })).status, 400, 'keep erases nothing');
  });

  it('resells a device: the new owner gets a working device and none of the old data; the old owner loses it', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    // Owners are principals (or group bindings); each sees what its group holds.
    const oldOwner = await principal(s, admin, { name: 'old-co', kind: 'service', scopes: ['devices:read', 'telemetry:read'] });
    const newOwner = await principal(s, admin, { name: 'new-co', kind: 'service', scopes: ['devices:read', 'telemetry:read'] });
    for (const [group, owner] of [
      ['old-co-devices', oldOwner.id],
      ['new-co-devices', newOwner.id],
    ] as const) {
      assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: group, kind: 'dynamic', query: { owner: [owner] } } })).status, 201);
    }
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'old-co-site', kind: 'static' } })).status, 201);
    for (const [p, group] of [
      [oldOwner, 'old-co-devices'],
      [newOwner, 'new-co-devices'],
    ] as const) {
      assert.equal((await s.api('PUT', `/api/v1/users/${p.id}/device-groups`, { token: admin, body: { deviceGroups: [group, ...(p === oldOwner ? ['old-co-site'] : [])] } })).status, 200);
    }
    const refusedOwner = await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'x-1', owner: 'acme' } });
    assert.deepEqual([refusedOwner.status, refusedOwner.body.error.code], [400, 'BULWARK_ERR_VALIDATION'], 'an owner is a principal or a group, not a free string');
    const { client } = await busyDevice(s, admin, 'eol-3', { owner: oldOwner.id });
    assert.equal((await s.api('POST', '/api/v1/groups/old-co-site/members/add', { token: admin, body: { deviceIds: ['eol-3'] } })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3/telemetry', { token: oldOwner.token })).body.length, 3);
    const gone = closed(client);

    // Bad transfers change nothing.
    const refuse = async (body: Record<string, unknown>, status: number) => {
      const res = await s.api('POST', '/api/v1/devices/eol-3/transfer', { token: admin, body });
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
    };
    await refuse({ owner: oldOwner.id, data: 'erase' }, 409);
    await refuse({ owner: newOwner.id, data: 'keep' }, 400);
    await refuse({ owner: 'svc_nobody', data: 'erase' }, 404);
    await refuse({ owner: 'someone', data: 'erase' }, 400);
    assert.equal((await s.api('PATCH', '/api/v1/devices/eol-3', { token: admin, body: { owner: newOwner.id } })).status, 409, 'changing hands is a transfer');
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3/telemetry', { token: admin })).body.length, 3, 'nothing was done');

    const sold = await s.api('POST', '/api/v1/devices/eol-3/transfer', { token: admin, body: { owner: newOwner.id, data: 'erase' } });
    assert.equal(sold.status, 200, sold.text);
    assert.deepEqual([sold.body.device.state, sold.body.device.owner], ['manufactured', newOwner.id]);
    assert.deepEqual([sold.body.receipt.kind, sold.body.receipt.transfer.from, sold.body.receipt.transfer.to, sold.body.receipt.data.telemetry], ['transfer', oldOwner.id, newOwner.id, 3]);
    await gone;
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3', { token: oldOwner.token })).status, 404, 'the old owner no longer sees it, not even through its static group');

    // The new owner's device enrols with the new claim token, gets a new certificate, and works.
    const keys = await makeDeviceKeys('eol-3');
    const enrolled = await s.api('POST', '/api/v1/enroll', { body: { token: sold.body.claimToken.token, csr: keys.csrPem } });
    assert.equal(enrolled.status, 201, enrolled.text);
    const again = await connect(tlsOptions(s, { ...keys, certPem: enrolled.body.certificate, caPem: enrolled.body.caChain }, 'eol-3'));
    t.after(() => again.end(true));
    await send(again, 'devices/eol-3/telemetry', env('new-1', { temp_c: 19 }));
    const seen = (await s.api('GET', '/api/v1/devices/eol-3/telemetry', { token: newOwner.token })).body as { msgId: string }[];
    assert.deepEqual(
      seen.map((r) => r.msgId),
      ['new-1'],
      'only its own reading',
    );
    for (const path of ['/events', '/commands']) assert.deepEqual((await s.api('GET', `/api/v1/devices/eol-3${path}`, { token: newOwner.token })).body, [], path);
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3/twin', { token: newOwner.token })).body.desired, null);
    assert.equal((await s.api('GET', '/api/v1/devices/eol-3/health', { token: newOwner.token })).body.history.length, 0);
  });
});
