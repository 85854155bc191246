import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from '../testing/harness.js';

const envSensor = (version: number, extra: Record<string, unknown> = {}, required = ['temp_c']) => ({
  $id: `env-sensor@${version}`,
  type: 'object',
  properties: {
    temp_c: { type: 'number', 'x-unit': 'degC', minimum: -40, maximum: 125 },
    rh_pct: { type: 'number', 'x-unit': '%', minimum: 0, maximum: 100 },
    ...extra,
  },
  required,
  additionalProperties: false,
});

describe('the schema registry', () => {
  it('registers versions, refuses incompatible ones, and validates data with exact reasons', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const post = (body: unknown) => s.api('POST', '/api/v1/schemas', { token: admin, body });
    assert.equal((await post(envSensor(1))).status, 201);
    assert.equal((await post(envSensor(1))).status, 409, 'versions are immutable');
    const v2 = await post(envSensor(2, { battery_mv: { type: 'integer', 'x-unit': 'mV' } }));
    assert.equal(v2.status, 201, v2.text);

    const cases: [string, unknown, RegExp][] = [
      ['unit change', envSensor(3, { rh_pct: { type: 'number', 'x-unit': 'ratio' }, battery_mv: { type: 'integer', 'x-unit': 'mV' } }), /changed unit/],
      ['type change', envSensor(3, { battery_mv: { type: 'string' } }), /changed type/],
      ['new required field', envSensor(3, { battery_mv: { type: 'integer', 'x-unit': 'mV' } }, ['temp_c', 'battery_mv']), /became required/],
      ['required field removed', { ...envSensor(3), properties: { rh_pct: { type: 'number', 'x-unit': '%' } }, required: [] }, /was removed/],
    ];
    for (const [what, body, reason] of cases) {
      const res = await post(body);
      assert.equal(res.status, 409, what);
      assert.equal(res.body.error.code, 'BULWARK_ERR_SCHEMA_INCOMPATIBLE', what);
      assert.match(res.body.error.message, reason, what);
    }
    const lower = await post(envSensor(1, {}, ['temp_c']));
    assert.equal(lower.status, 409);

    const invalid: [string, unknown][] = [
      ['no unit on a number', { $id: 'x@1', type: 'object', properties: { t: { type: 'number' } } }],
      ['bad $id', { $id: 'Env Sensor', type: 'object', properties: { t: { type: 'string' } } }],
      ['unknown keyword', { $id: 'x@1', type: 'object', properties: { t: { type: 'string', maxLenght: 3 } } }],
      ['remote $ref', { $id: 'x@1', type: 'object', properties: { t: { $ref: 'https://example.test/s.json' } } }],
      ['not an object schema', { $id: 'x@1', type: 'object', properties: {} }],
    ];
    for (const [what, body] of invalid) {
      const res = await post(body);
      assert.ok(res.status === 400, `${what}: ${res.status} ${res.text}`);
      assert.ok(['BULWARK_ERR_SCHEMA_INVALID', 'BULWARK_ERR_VALIDATION'].includes(res.body.error.code), what);
    }

    const check = (data: unknown) => s.api('POST', '/api/v1/schemas/env-sensor/versions/2/validate', { token: admin, body: { data } });
    assert.deepEqual((await check({ temp_c: 21.5, rh_pct: 40 })).body, { ok: true, problems: [] });
    const bad = (await check({ temp_c: 'hot', rh_pct: 140, extra: 1 })).body;
    assert.equal(bad.ok, false);
    assert.deepEqual(
      bad.problems.find((p: { path: string }) => p.path === '/temp_c'),
      { path: '/temp_c', expected: 'type number', got: '"hot"' },
    );
    assert.deepEqual(
      bad.problems.find((p: { path: string }) => p.path === '/rh_pct'),
      { path: '/rh_pct', expected: 'maximum must be <= 100', got: '140' },
    );
    assert.ok(bad.problems.some((p: { path: string; expected: string }) => p.path === '/extra' && p.expected === 'no such field'));
    const missing = (await check({ rh_pct: 3 })).body;
    assert.deepEqual(missing.problems, [{ path: '/temp_c', expected: 'a value (required)', got: 'nothing' }]);
    const hostile = await check(JSON.parse('{"temp_c": 1, "__proto__": {"polluted": true}}'));
    assert.equal(hostile.status, 400, 'a body with a __proto__ key is refused outright');
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
    assert.equal((await s.api('GET', '/api/v1/schemas/env-sensor/versions/9', { token: admin })).status, 404);
    const listed = await s.api('GET', '/api/v1/schemas', { token: admin });
    assert.deepEqual(
      listed.body.map((x: { name: string; version: number }) => `${x.name}@${x.version}`),
      ['env-sensor@1', 'env-sensor@2'],
    );
  });

  it('keeps schemas across a restart and validates with them', async (t) => {
    const s = await startTestServer(t, { keepRunning: true });
    const admin = await s.tokenFor(s.adminKey);
    await s.api('POST', '/api/v1/schemas', { token: admin, body: envSensor(1) });
    await s.server.stop();
    const again = await startTestServer(t, { dataDir: s.dataDir, adminKey: s.adminKey });
    const res = await again.server.schemas.validate('env-sensor@1', { temp_c: 500 });
    assert.equal(res.ok, false);
    assert.equal((await again.server.schemas.validate('nope@1', {})).ok, false);
  });
});
