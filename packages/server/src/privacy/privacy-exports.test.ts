import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0, exportCall, ingest, ndjson, startExportServer } from '../testing/telemetry-export.js';

const MIN = 60_000;
const range = { since: String(T0), until: String(T0 + 60 * MIN) };

describe('telemetry exports with privacy.pseudonymise', () => {
  it('exports=on: rows carry the device pseudonym, never the real id (cursor included), and resume; operators map between the two', async (t) => {
    const x = await startExportServer(t, { config: { privacy: { pseudonymise: 'exports' } } });
    await ingest(x.s, 'm-1', 'a', T0 + MIN, 'meter@1', { kwh: 1, pin: '1234' });
    await ingest(x.s, 'm-1', 'b', T0 + 2 * MIN, 'meter@1', { kwh: 2 });
    await ingest(x.s, 'm-2', 'a', T0 + 3 * MIN, 'meter@1', { kwh: 3 });
    const pseudonym = async (value: string) => (await x.s.api('POST', '/api/v1/privacy/pseudonyms', { token: x.admin, body: { kind: 'devices', value } })).body.pseudonym as string;
    const [p1, p2] = [await pseudonym('m-1'), await pseudonym('m-2')];
    assert.match(p1, /^p:dev:[0-9a-f]{32}$/);

    const res = await exportCall(x, { ...range, tag: 'meters' });
    assert.equal(res.status, 200, res.text);
    const rows = ndjson(res.text);
    assert.deepEqual(rows.map((r) => `${String(r.deviceId)}/${String(r.msgId)}`).sort(), [`${p1}/a`, `${p1}/b`, `${p2}/a`].sort());
    for (const r of rows) assert.equal(Buffer.from(String(r.cursor).replace(/^s_/, ''), 'base64url').toString('latin1').includes('m-1'), false, 'the cursor does not carry the id');
    assert.equal(/\bm-[12]\b/.test(res.text), false);
    const csv = await exportCall(x, { ...range, device: 'm-1', format: 'csv' });
    assert.deepEqual(
      csv.text
        .split('\r\n')
        .slice(1, -1)
        .map((row) => row.split(',')[0]),
      [p1, p1],
    );

    // Resuming after the first row gives the rest, once.
    const first = rows.find((r) => r.deviceId === p1 && r.msgId === 'a');
    const rest = ndjson((await exportCall(x, { ...range, device: 'm-1', cursor: String(ndjson((await exportCall(x, { ...range, device: 'm-1' })).text)[0]?.cursor) })).text);
    assert.ok(first);
    assert.deepEqual(
      rest.map((r) => r.msgId),
      ['b'],
    );
    const forged = await exportCall(x, { ...range, device: 'm-1', cursor: Buffer.from(JSON.stringify([1, T0, 'x', 'm-1', T0, 'a'])).toString('base64url') });
    assert.equal(forged.body.error.details.reason, 'cursor_invalid', 'a plain cursor is refused once cursors are sealed');

    const resolved = await x.s.api('POST', '/api/v1/privacy/resolve', { token: x.admin, body: { pseudonym: p2 } });
    assert.equal(resolved.status, 200, resolved.text);
    assert.deepEqual(resolved.body, { kind: 'devices', value: 'm-2', pseudonym: p2 });
    const unknown = await x.s.api('POST', '/api/v1/privacy/resolve', { token: x.admin, body: { pseudonym: `p:dev:${'0'.repeat(32)}` } });
    assert.equal(unknown.body.error.code, 'BULWARK_ERR_NOT_FOUND');
    assert.equal((await x.s.api('POST', '/api/v1/privacy/resolve', { token: x.admin, body: { pseudonym: 'm-2' } })).body.error.code, 'BULWARK_ERR_VALIDATION');

    const user = await x.s.api('POST', '/api/v1/users', { token: x.admin, body: { name: 'op1', role: 'operator' } });
    const key = await x.s.api('POST', '/api/v1/keys', { token: x.admin, body: { name: 'o', principalId: user.body.id } });
    const operator = await x.s.tokenFor(key.body.key);
    const refused = await x.s.api('POST', '/api/v1/privacy/resolve', { token: operator, body: { pseudonym: p2 } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.details.requiredScope, 'privacy:resolve');

    const audit = (await x.s.api('GET', '/api/v1/audit?action=privacy.resolve', { token: x.admin })).body as { target: string; result: string; actor: string }[];
    assert.ok(
      audit.some((e) => e.target === p2 && e.result === 'ok'),
      'a resolution is audited with the pseudonym',
    );
    assert.ok(
      audit.some((e) => e.result === 'denied' && e.actor === user.body.id),
      'a refused one too',
    );
    const exports = (await x.s.api('GET', '/api/v1/audit?action=telemetry.export', { token: x.admin })).body as { target: string }[];
    assert.ok(
      exports.some((e) => e.target === 'device:m-1'),
      'the audit log keeps real identities',
    );
  });

  it('off (the default): rows carry the real device id', async (t) => {
    const x = await startExportServer(t);
    await ingest(x.s, 'm-1', 'a', T0 + MIN, 'meter@1', { kwh: 1 });
    const rows = ndjson((await exportCall(x, { ...range, device: 'm-1' })).text);
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      ['m-1'],
    );
  });
});
