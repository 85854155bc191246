import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'coap';
import { type EnrolledDevice, enrollDevice } from '../../testing/devices.js';
import { type TestServer, tempDir } from '../../testing/harness.js';
import { env, metric, setup } from '../../testing/telemetry.js';

const run = promisify(execFile);
/** Requests in the as-fast-as-it-can run: small in `npm test`, large in `npm run test:long`. */
const N = Number(process.env.BULWARK_TEST_FLOOD_MESSAGES ?? 600);

/** The signed URI of one reading: raw r||s (IEEE P1363), as small devices sign. */
const uri = (s: TestServer, d: EnrolledDevice, payload: string) => `coap://127.0.0.1:${s.server.coapPort}/t?d=${d.id}&s=${sign('sha256', Buffer.from(payload), { key: d.keyPem, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;

/** One POST with the coap library: the response code and its Max-Age option. */
function post(s: TestServer, d: EnrolledDevice, payload: string): Promise<{ code: string; maxAge: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ hostname: '127.0.0.1', port: s.server.coapPort, pathname: '/t', query: new URL(uri(s, d, payload)).search.slice(1), method: 'POST' });
    req.on('response', (res) => {
      resolve({ code: res.code, maxAge: res.headers['Max-Age'] });
      res.resume();
    });
    req.on('error', reject);
    req.end(payload);
  });
}

describe('CoAP message rate', () => {
  it('answers 4.29 Too Many Requests with Max-Age past the device budget (coap-client), and counts it', async (t) => {
    const { s, admin } = await setup(t, { id: 'mqtt-0', config: { coap: { enabled: true, port: 0 }, mqtt: { publishRatePerSecond: 1, publishBurst: 2 } } });
    const d = await enrollDevice(s, admin, 'c-1');
    const dir = tempDir(t);
    const send = async (i: number) => {
      const payload = env(`c-${i}`, { temp_c: 20 });
      writeFileSync(join(dir, `r${i}`), payload);
      const out = await run('coap-client-notls', ['-m', 'post', '-t', 'application/json', '-f', join(dir, `r${i}`), '-B', '10', '-v', '6', uri(s, d, payload)]).catch((err: { stdout?: string; stderr?: string }) => ({
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
      }));
      return `${out.stdout}${out.stderr}`;
    };
    assert.match(await send(0), /"status":"stored"/);
    assert.match(await send(1), /"status":"stored"/);
    const limited = await send(2);
    assert.match(limited, /4\.29/, limited);
    assert.match(limited, /BULWARK_ERR_RATE_LIMITED/);
    assert.equal(await metric(s, /bulwark_coap_rate_limited_total (\d+)/), 1);
    assert.equal(await metric(s, /bulwark_coap_requests_total\{code="4.29"\} (\d+)/), 1);
    const again = await post(s, d, env('c-3', { temp_c: 20 }));
    assert.equal(again.code, '4.29');
    assert.equal(again.maxAge, 1, 'Max-Age: seconds until the next token');
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'c-1', limit: 10 })).length, 2);
  });

  it(`holds a device sending ${N} signed readings back to back with default settings to its rate`, async (t) => {
    const { s, admin } = await setup(t, { id: 'mqtt-0', config: { coap: { enabled: true, port: 0 } } });
    const d = await enrollDevice(s, admin, 'c-fast');
    const t0 = performance.now();
    const counts = { ok: 0, limited: 0 };
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < N) {
          const a = await post(s, d, env(`f-${next++}`, { temp_c: 20 }));
          if (a.code === '2.04') counts.ok += 1;
          else if (a.code === '4.29') counts.limited += 1;
          else assert.fail(`unexpected ${a.code}`);
        }
      }),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    console.log(`CoAP: ${N} requests in ${elapsedS.toFixed(2)} s: ${counts.ok} stored, ${counts.limited} answered 4.29`);
    assert.ok(counts.ok <= 200 + 100 * elapsedS + 1, `at most the burst plus 100/s (${counts.ok} in ${elapsedS.toFixed(2)} s)`);
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'c-fast', limit: N + 10 })).length, counts.ok);
    assert.equal(await metric(s, /bulwark_coap_rate_limited_total (\d+)/), counts.limited);
  });
});
