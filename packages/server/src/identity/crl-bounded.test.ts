import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { startTestServer, tempDir } from '../testing/harness.js';
import { enrollDevice } from '../testing/devices.js';

const DAY_MS = 86_400_000;

describe('the bounded CRL', () => {
  it('keeps a revoked certificate on the CRL for one CRL validity past its end, then drops it at the next re-signing', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock, config: { identity: { deviceCertValidityDays: 2, crlValidityMs: 3 * 3_600_000 } } });
    const CRL_VALIDITY_MS = 3 * 3_600_000;
    const shortLived = await enrollDevice(s, await s.tokenFor(s.adminKey), 'short-1');
    clock.advance(DAY_MS);
    // Access tokens live minutes: a new one after the clock moved on.
    const admin = await s.tokenFor(s.adminKey);
    const later = await enrollDevice(s, admin, 'later-1');
    for (const id of ['short-1', 'later-1']) assert.equal((await s.api('POST', `/api/v1/devices/${id}/revoke`, { token: admin, body: { reason: 'test' } })).body.revoked, 1);

    const dir = tempDir(t);
    /** The serials the published CRL lists, as OpenSSL reads them (lower-case hex without leading zeros). */
    const listed = async () => {
      writeFileSync(join(dir, 'crl.pem'), (await s.api('GET', '/api/v1/pki/crl.pem')).text);
      const text = execFileSync('openssl', ['crl', '-in', 'crl.pem', '-noout', '-text'], { cwd: dir, encoding: 'utf8' });
      return [...text.matchAll(/Serial Number: ([0-9A-F]+)/gi)].map((m) => m[1]!.toLowerCase().replace(/^0+/, ''));
    };
    const serial = (hex: string) => hex.toLowerCase().replace(/^0+/, '');
    assert.deepEqual((await listed()).sort(), [serial(shortLived.serial), serial(later.serial)].sort());

    // short-1's certificate ends a day from now; later-1's a day after that.
    clock.advance(DAY_MS + 60_000);
    await s.server.identity.refreshCrl();
    assert.equal((await listed()).length, 2, 'a CRL issued after short-1 expired still lists it');
    clock.advance(CRL_VALIDITY_MS);
    await s.server.identity.refreshCrl();
    assert.deepEqual(await listed(), [serial(later.serial)], 'one CRL validity later the expired certificate left the list; the one still valid stays');
    clock.advance(DAY_MS);
    await s.server.identity.refreshCrl();
    assert.deepEqual(await listed(), [], 'both long expired: the list is empty, and still signed and fresh');
  });
});
