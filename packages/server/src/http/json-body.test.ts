import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { API_JSON_MAX_DEPTH } from './json-body.js';

/** `{"<key>": {"a": {"a": ... 1}}}`: the body itself is level 1, so it nests `levels + 1` deep. */
const nestedUnder = (key: string, levels: number) => `{"${key}":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}`;
const errorCount = async (s: TestServer, code: string) => Number(new RegExp(`bulwark_http_errors_total\\{code="${code}"\\} (\\d+)`).exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0);

describe('JSON request bodies', () => {
  it('refuse a 20,000-level desired configuration with 400 JSON_TOO_DEEP, and any desired config deeper than devices accept', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'valve-1' } })).status, 201);
    const put = (rawBody: string) => s.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, rawBody });

    const huge = await put(nestedUnder('config', 20_000));
    assert.equal(huge.status, 400, huge.text);
    assert.deepEqual([huge.body.error.code, huge.body.error.details], ['BULWARK_ERR_JSON_TOO_DEEP', { maxDepth: ENVELOPE_LIMITS.maxDepth }]);
    assert.equal(typeof huge.body.error.requestId, 'string');

    // The body nests exactly as deep as the {version, config, ts} message the device gets.
    const forty = await put(nestedUnder('config', 40));
    assert.equal(forty.status, 400, 'deeper than devices accept, though within the general bound');
    assert.equal(forty.body.error.code, 'BULWARK_ERR_JSON_TOO_DEEP');
    const oneTooMany = await put(nestedUnder('config', ENVELOPE_LIMITS.maxDepth));
    assert.deepEqual([oneTooMany.status, oneTooMany.body.error.details.maxDepth], [400, ENVELOPE_LIMITS.maxDepth]);
    const deepest = await put(nestedUnder('config', ENVELOPE_LIMITS.maxDepth - 1));
    assert.equal(deepest.status, 200, deepest.text);
    assert.equal(deepest.body.desired.version, 1, 'only the accepted body made a version');
    assert.equal(await errorCount(s, 'BULWARK_ERR_JSON_TOO_DEEP'), 3);
  });

  it(`bound every route at ${API_JSON_MAX_DEPTH} levels, while parsing, even for a body as deep as the body limit allows`, async (t) => {
    const s = await startTestServer(t);
    const token = (rawBody: string) => s.api('POST', '/api/v1/auth/token', { rawBody });
    const atBound = await token(nestedUnder('key', API_JSON_MAX_DEPTH - 1));
    assert.equal(atBound.body.error.code, 'BULWARK_ERR_VALIDATION', 'parsed, then refused by the schema');
    const past = await token(nestedUnder('key', API_JSON_MAX_DEPTH));
    assert.deepEqual([past.status, past.body.error.code, past.body.error.details], [400, 'BULWARK_ERR_JSON_TOO_DEEP', { maxDepth: API_JSON_MAX_DEPTH }]);

    const levels = 500_000; // 1,000,000 bytes, just under the default body limit
    const started = performance.now();
    const deepest = await token('['.repeat(levels) + ']'.repeat(levels));
    assert.equal(deepest.body.error.code, 'BULWARK_ERR_JSON_TOO_DEEP');
    assert.ok(performance.now() - started < 2000, 'refused at the first levels past the bound, not after walking the body');
    assert.equal((await s.api('GET', '/healthz')).status, 200);
  });

  it("keep what Fastify's parser did: empty and malformed bodies, prototype poisoning, the body limit", async (t) => {
    const s = await startTestServer(t, { config: { http: { bodyLimitBytes: 4096 } } });
    const token = (rawBody: string) => s.api('POST', '/api/v1/auth/token', { rawBody });
    assert.equal((await token('')).body.error.code, 'BULWARK_ERR_MALFORMED_JSON', 'empty with content-type application/json');
    assert.equal((await token('{"key": ')).body.error.code, 'BULWARK_ERR_MALFORMED_JSON');
    assert.equal((await token(`{"key": {"s": "${'[{'.repeat(40)}"}}`)).body.error.code, 'BULWARK_ERR_VALIDATION', 'brackets inside strings are text');
    assert.equal((await token('{"key": "k", "__proto__": {"isAdmin": true}}')).status, 400);
    assert.equal((await token('{"key": "k", "__proto__": {"isAdmin": true}}')).body.error.code, 'BULWARK_ERR_MALFORMED_JSON');
    assert.equal((await token('{"key": "k", "constructor": {"prototype": {"isAdmin": true}}}')).body.error.code, 'BULWARK_ERR_MALFORMED_JSON');
    const big = await token(JSON.stringify({ key: 'k'.repeat(5000) }));
    assert.deepEqual([big.status, big.body.error.code], [413, 'BULWARK_ERR_PAYLOAD_TOO_LARGE']);
    const bigAndDeep = await token('['.repeat(3000) + ']'.repeat(3000));
    assert.equal(bigAndDeep.status, 413, 'the body limit is checked while reading, before the depth');
    const ok = await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } });
    assert.equal(ok.status, 200, ok.text);
  });
});
