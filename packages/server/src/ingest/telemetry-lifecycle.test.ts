import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { env, readings, setup } from '../testing/telemetry.js';

describe('retention', () => {
  it("deletes readings past their schema's retention and dead letters past theirs, with a receipt in the audit log", async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin: firstToken, client } = await setup(t, { clock, config: { telemetry: { rawRetentionDays: 30, deadLetterRetentionDays: 3, retentionIntervalMs: 0 } } });
    let admin = firstToken;
    const short = await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'blip@1', type: 'object', 'x-retention-days': 2, properties: { on: { type: 'boolean' } } } });
    assert.equal(short.status, 201, short.text);
    const t0 = clock.now();
    await client.publishAsync('devices/sensor-1/telemetry', env('old-env', { temp_c: 1 }, { ts: t0 }), { qos: 1 });
    await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id: 'old-blip', ts: t0, schema: 'blip@1', data: { on: true } }), { qos: 1 });
    await client.publishAsync('devices/sensor-1/telemetry', 'not json', { qos: 1 });
    clock.advance(5 * 86_400_000);
    await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id: 'new-blip', ts: clock.now(), schema: 'blip@1', data: { on: false } }), { qos: 1 });
    admin = await s.tokenFor(s.adminKey); // five days on, the first token has long expired
    const run = await s.api('POST', '/api/v1/telemetry/retention/run', { token: admin });
    assert.equal(run.status, 200, run.text);
    assert.deepEqual(
      run.body.map((r: { what: string; deleted: number }) => [r.what, r.deleted]),
      [
        ['telemetry blip@1', 1],
        ['dead letters', 1],
      ],
    );
    const left = (await readings(s, admin)).map((r) => r.msgId).sort();
    assert.deepEqual(left, ['new-blip', 'old-env'], 'env-sensor keeps the 30-day default; blip@1 keeps 2 days');
    const receipts = await s.api('GET', '/api/v1/audit?action=telemetry.delete', { token: admin });
    assert.equal(receipts.body.length, 2);
    const blip = receipts.body.find((e: { target: string }) => e.target === 'telemetry blip@1');
    assert.deepEqual([blip.details.deleted, blip.details.retentionDays, blip.details.until], [1, 2, clock.now() - 2 * 86_400_000]);
    assert.equal((await s.api('POST', '/api/v1/telemetry/retention/run', { token: admin })).body.length, 0, 'nothing left to delete, no receipt');
  });
});

describe('rollups', () => {
  it('keeps min, max, mean and count per minute and per hour, incrementally, counting a duplicate once', async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin, client } = await setup(t, { clock });
    const hour = Math.floor(clock.now() / 3_600_000) * 3_600_000;
    const at = (minute: number, second: number) => hour + minute * 60_000 + second * 1000;
    const sends: [string, number, number][] = [
      ['a', at(1, 5), 10],
      ['b', at(1, 30), 20],
      ['c', at(1, 59), 30],
      ['d', at(2, 0), -5],
      ['b', at(1, 30), 20],
    ];
    for (const [id, ts, v] of sends) await client.publishAsync('devices/sensor-1/telemetry', env(id, { temp_c: v }, { ts }), { qos: 1 });
    const get = async (resolution: string) => (await s.api('GET', `/api/v1/devices/sensor-1/rollups?field=temp_c&resolution=${resolution}`, { token: admin })).body;
    const minutes = await get('1m');
    assert.deepEqual(
      minutes.map((b: { bucketStart: number; count: number; min: number; max: number; mean: number }) => [b.bucketStart, b.count, b.min, b.max, b.mean]),
      [
        [at(1, 0), 3, 10, 30, 20],
        [at(2, 0), 1, -5, -5, -5],
      ],
    );
    const hours = await get('1h');
    assert.deepEqual(
      hours.map((b: { count: number; min: number; max: number; mean: number }) => [b.count, b.min, b.max, b.mean]),
      [[4, -5, 30, 13.75]],
    );
    assert.equal((await s.api('GET', '/api/v1/devices/sensor-1/rollups?field=temp_c&resolution=5m', { token: admin })).status, 400);
  });
});

/** Just enough CBOR encoding for tests: maps with text keys, text, unsigned integers, doubles. */

function cbor(value: unknown): Buffer {
  const head = (major: number, n: number) => (n < 24 ? Buffer.from([(major << 5) | n]) : n < 256 ? Buffer.from([(major << 5) | 24, n]) : Buffer.concat([Buffer.from([(major << 5) | 26]), Buffer.from(Uint32Array.of(n).buffer).reverse()]));
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return head(0, value);
  if (typeof value === 'number') {
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(value, 1);
    return b;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

describe('CBOR envelopes', () => {
  it('stores a CBOR envelope like a JSON one, and dead-letters malformed CBOR with its exact bytes', async (t) => {
    const { s, admin, client } = await setup(t);
    const envelope = cbor({ id: 'c-1', seq: 1, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 21.25 } });
    await client.publishAsync('devices/sensor-1/telemetry', envelope, { qos: 1 });
    assert.deepEqual(
      (await readings(s, admin)).map((r) => [r.msgId, r.data]),
      [['c-1', { temp_c: 21.25 }]],
    );
    const broken = Buffer.concat([cbor({ id: 'c-2' }).subarray(0, 4)]);
    await client.publishAsync('devices/sensor-1/telemetry', broken, { qos: 1 });
    const [masked] = (await s.api('GET', '/api/v1/dead-letters?reason=malformed_cbor', { token: admin })).body;
    assert.deepEqual([masked?.protection, masked?.payload], ['whole', '***'], 'no usable schema: sealed whole, shown masked');
    const [letter] = (await s.api('GET', '/api/v1/dead-letters?reason=malformed_cbor&decrypt=true', { token: admin })).body;
    assert.equal(letter?.payload, `base64:${broken.toString('base64')}`, 'in clear, the exact bytes');
  });
});

describe('sensitive fields', () => {
  it('masks, pseudonymises and encrypts fields the schema marks, before storing or streaming them', async (t) => {
    const { s, admin, client } = await setup(t);
    const tracker = {
      $id: 'tracker@1',
      type: 'object',
      properties: {
        speed_kmh: { type: 'number', 'x-unit': 'km/h' },
        driver_email: { type: 'string', 'x-sensitive': 'hash' },
        pin: { type: 'string', 'x-sensitive': 'mask' },
        lat_deg: { type: 'number', 'x-unit': 'deg', 'x-sensitive': 'encrypt' },
      },
    };
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: tracker })).status, 201);
    const send = (id: string, data: Record<string, unknown>) => client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id, schema: 'tracker@1', data }), { qos: 1 });
    await send('p-1', { speed_kmh: 50, driver_email: 'ana@example.test', pin: 'pin-8472-x9q', lat_deg: 47.3769123 });
    await send('p-2', { speed_kmh: 60, driver_email: 'ana@example.test', pin: '0000', lat_deg: 47.3769456 });
    const stored = await readings(s, admin);
    const [a, b] = stored.map((r) => r.data as Record<string, string | number>);
    assert.equal(a?.speed_kmh, 50);
    assert.equal(a?.pin, '***');
    assert.match(String(a?.driver_email), /^h:[0-9a-f]{32}$/);
    assert.equal(a?.driver_email, b?.driver_email, 'the same value gives the same pseudonym');
    assert.match(String(a?.lat_deg), /^enc:/);
    await s.server.stop();
    for (const file of ['bulwark.db', 'bulwark.db-wal']) {
      const path = join(s.dataDir, file);
      if (existsSync(path)) {
        const bytes = readFileSync(path);
        for (const secret of ['ana@example.test', '47.3769123', 'pin-8472-x9q']) assert.ok(!bytes.includes(secret), `${secret} is in ${file}`);
      }
    }
  });

  it('decrypts encrypted fields only for telemetry:decrypt, and audits the read', async (t) => {
    const { s, admin, client } = await setup(t);
    await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'geo@1', type: 'object', properties: { lat_deg: { type: 'number', 'x-unit': 'deg', 'x-sensitive': 'encrypt' } } } });
    await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id: 'g-1', schema: 'geo@1', data: { lat_deg: 12.5 } }), { qos: 1 });
    const op = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'op', role: 'operator' } });
    const opToken = await s.tokenFor((await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: op.body.id } })).body.key);
    const refused = await s.api('GET', '/api/v1/devices/sensor-1/telemetry?decrypt=true', { token: opToken });
    assert.equal(refused.status, 403);
    const plain = await s.api('GET', '/api/v1/devices/sensor-1/telemetry?decrypt=true', { token: admin });
    assert.deepEqual(
      plain.body.map((r: { data: unknown }) => r.data),
      [{ lat_deg: 12.5 }],
    );
    const audit = await s.api('GET', '/api/v1/audit?action=telemetry.decrypt', { token: admin });
    assert.deepEqual([audit.body[0]?.target, audit.body[0]?.details?.readings], ['sensor-1', 1]);
    const rollups = await s.api('GET', '/api/v1/devices/sensor-1/rollups?field=lat_deg&resolution=1m', { token: admin });
    assert.deepEqual(rollups.body, [], 'an encrypted number is not rolled up in the clear');
  });
});
