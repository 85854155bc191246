import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { enrollDevice } from '../../testing/devices.js';
import { startTestServer, tempDir } from '../../testing/harness.js';

const run = promisify(execFile);

/** OpenSSL writes DER; small devices (and short URI queries) use raw r||s. */
function derToRaw(der: Buffer): Buffer {
  let at = 2 + (der[1] === 0x81 ? 1 : 0);
  const part = () => {
    const len = der[at + 1] ?? 0;
    const bytes = der.subarray(at + 2, at + 2 + len);
    at += 2 + len;
    return Buffer.concat([Buffer.alloc(32), bytes.subarray(bytes.length > 32 ? bytes.length - 32 : 0)]).subarray(-32);
  };
  return Buffer.concat([part(), part()]);
}

describe('CoAP ingest with signed envelopes', () => {
  it('stores a reading sent by coap-client and signed by openssl with the device key, and refuses forgeries', async (t) => {
    const s = await startTestServer(t, { config: { coap: { enabled: true, port: 0 } } });
    const admin = await s.tokenFor(s.adminKey);
    await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'env-sensor@1', type: 'object', properties: { temp_c: { type: 'number', 'x-unit': 'degC' } } } });
    const d = await enrollDevice(s, admin, 'coap-1');
    const dir = tempDir(t);
    writeFileSync(join(dir, 'device.key'), d.keyPem);
    const post = async (name: string, envelope: string, signWith: string | null = join(dir, 'device.key'), deviceId = 'coap-1') => {
      writeFileSync(join(dir, name), envelope);
      const sig = signWith ? derToRaw((await run('openssl', ['dgst', '-sha256', '-sign', signWith, join(dir, name)], { encoding: 'buffer' })).stdout).toString('base64url') : 'AAAA';
      // coap-client prints a 2.xx answer on stdout, anything else on stderr with a non-zero exit.
      const out = await run('coap-client-notls', ['-m', 'post', '-t', 'application/json', '-f', join(dir, name), '-B', '10', `coap://127.0.0.1:${s.server.coapPort}/t?d=${deviceId}&s=${sig}`]).catch((err: { stdout?: string; stderr?: string }) => ({
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
      }));
      return `${out.stdout}${out.stderr}`.trim();
    };
    const stored = await post('r1.json', JSON.stringify({ id: 'c-1', ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 19.5 } }));
    assert.match(stored, /"status":"stored"/);
    const readings = await s.api('GET', '/api/v1/devices/coap-1/telemetry', { token: admin });
    assert.deepEqual(
      readings.body.map((r: { msgId: string; data: unknown }) => [r.msgId, r.data]),
      [['c-1', { temp_c: 19.5 }]],
    );
    assert.match(await post('r1.json', JSON.stringify({ id: 'c-1', ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 19.5 } })), /"status":"duplicate"/);

    const forged = await post('r2.json', JSON.stringify({ id: 'c-2', schema: 'env-sensor@1', data: { temp_c: 99 } }), null);
    assert.match(forged, /BULWARK_ERR_UNAUTHENTICATED/);
    await run('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', join(dir, 'other.key')]);
    assert.match(await post('r3.json', JSON.stringify({ id: 'c-3', schema: 'env-sensor@1', data: { temp_c: 99 } }), join(dir, 'other.key')), /BULWARK_ERR_UNAUTHENTICATED/);
    assert.match(await post('r4.json', JSON.stringify({ id: 'c-4', schema: 'env-sensor@1', data: { temp_c: 'hot' } })), /schema_violation/);
    await s.api('POST', '/api/v1/devices/coap-1/revoke', { token: admin });
    assert.match(await post('r5.json', JSON.stringify({ id: 'c-5', schema: 'env-sensor@1', data: { temp_c: 1 } })), /BULWARK_ERR_UNAUTHENTICATED/, 'a revoked certificate signs nothing');
    assert.equal((await s.api('GET', '/api/v1/devices/coap-1/telemetry', { token: admin })).body.length, 1);
  });
});
