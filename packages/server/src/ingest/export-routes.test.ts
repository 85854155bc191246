import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ExportServer, T0, exportCall, ingest, insertReadings, ndjson, record, startExportServer } from '../testing/telemetry-export.js';

const MIN = 60_000;
const range = { since: new Date(T0).toISOString(), until: String(T0 + 60 * MIN) };

/** m-1: meter@1 and meter@2; m-2: meter@1; e-1: env@1 (tagged floor_1); one m-1 reading just outside the range. */
async function fill(x: ExportServer): Promise<void> {
  await ingest(x.s, 'm-1', 'a', T0 + 2 * MIN, 'meter@1', { kwh: 1.5, site: 'north, "annex"', pin: '1234', holder: 'Ann' });
  await ingest(x.s, 'm-1', 'b', T0 + MIN, 'meter@2', { kwh: 2, volt: 230, pin: '9876' });
  await ingest(x.s, 'm-1', 'c', T0 + MIN, 'meter@1', { kwh: 3, site: '=HYPERLINK("x")', extra: [1] });
  await ingest(x.s, 'm-1', 'late', T0 + 60 * MIN, 'meter@1', { kwh: 4 });
  await ingest(x.s, 'm-2', 'a', T0, 'meter@1', { kwh: 5 });
  await ingest(x.s, 'e-1', 'a', T0 + 3 * MIN, 'env@1', { temp_c: 21.5 });
}

const ids = (text: string) => ndjson(text).map((l) => `${String(l.deviceId)}/${String(l.msgId)}`);

describe('GET /api/v1/telemetry/export', () => {
  it('selects by device, tag or schema within [since, until), in device, time, message id order', async (t) => {
    const x = await startExportServer(t);
    await fill(x);
    const cases: [Record<string, string>, string[]][] = [
      [{ device: 'm-1' }, ['m-1/b', 'm-1/c', 'm-1/a']],
      [{ tag: 'meters' }, ['m-1/b', 'm-1/c', 'm-1/a', 'm-2/a']],
      [{ tag: 'floor_1' }, ['e-1/a']],
      [{ tag: 'nobody' }, []],
      [{ schema: 'meter' }, ['m-1/b', 'm-1/c', 'm-1/a', 'm-2/a']],
      [{ schema: 'meter@2' }, ['m-1/b']],
      [{ device: 'm-1', since: String(T0 + 2 * MIN), until: String(T0 + 61 * MIN) }, ['m-1/a', 'm-1/late']],
    ];
    for (const [query, expected] of cases) {
      const res = await exportCall(x, { ...range, ...query });
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
      assert.deepEqual(ids(res.text), expected, JSON.stringify(query));
    }
    const [first] = ndjson((await exportCall(x, { ...range, device: 'm-2' })).text);
    assert.deepEqual(Object.keys(first ?? {}), ['deviceId', 'msgId', 'schemaId', 'seq', 'boot', 'deviceTs', 'receivedAt', 'ts', 'skewMs', 'data', 'cursor']);
    assert.deepEqual([first?.schemaId, first?.ts, first?.data], ['meter@1', T0, { kwh: 5 }]);
  });

  it('refuses bad filters, times, ranges and cursors with BULWARK_ERR_EXPORT_INVALID and a reason', async (t) => {
    const x = await startExportServer(t);
    const cases: [Record<string, string>, string][] = [
      [{ ...range }, 'filter_missing'],
      [{ ...range, device: 'm-1', tag: 'meters' }, 'filter_conflict'],
      [{ device: 'm-1', until: range.until }, 'time_missing'],
      [{ device: 'm-1', since: 'yesterday', until: range.until }, 'time_invalid'],
      [{ device: 'm-1', since: '2026-01-01T00:00:00', until: range.until }, 'time_invalid'],
      [{ device: 'm-1', since: '-5', until: range.until }, 'time_invalid'],
      [{ device: 'm-1', since: range.until, until: range.since }, 'range_empty'],
      [{ device: 'm-1', since: range.since, until: range.since }, 'range_empty'],
      [{ ...range, device: 'm-1', cursor: 'not-a-cursor' }, 'cursor_invalid'],
    ];
    for (const [query, reason] of cases) {
      const res = await exportCall(x, query);
      assert.equal(res.status, 400, `${JSON.stringify(query)}: ${res.text}`);
      assert.equal(res.body.error.code, 'BULWARK_ERR_EXPORT_INVALID');
      assert.equal(res.body.error.details.reason, reason, JSON.stringify(query));
      assert.ok(res.body.error.requestId);
    }
    assert.equal((await exportCall(x, { ...range, device: 'nobody' })).body.error.code, 'BULWARK_ERR_NOT_FOUND');
    assert.equal((await exportCall(x, { ...range, schema: 'nothing' })).body.error.code, 'BULWARK_ERR_NOT_FOUND');
    assert.equal((await exportCall(x, { ...range, schema: 'meter@9' })).body.error.code, 'BULWARK_ERR_NOT_FOUND');
    for (const query of [{ format: 'xml' }, { limit: '5' }, { schema: 'Meter@1' }]) {
      const res = await exportCall(x, { ...range, device: 'm-1', ...query });
      assert.equal(res.body.error.code, 'BULWARK_ERR_VALIDATION', JSON.stringify(query));
    }
    const resumable = ndjson((await exportCall(x, { ...range, device: 'm-1' })).text);
    assert.equal(resumable.length, 0, 'no readings stored yet');
    await ingest(x.s, 'm-1', 'z', T0, 'meter@1', { kwh: 1 });
    const [line] = ndjson((await exportCall(x, { ...range, device: 'm-1' })).text);
    const other = await exportCall(x, { ...range, device: 'm-2', cursor: String(line?.cursor) });
    assert.equal(other.body.error.details.reason, 'cursor_mismatch');
  });

  it('writes CSV with a column per field of the requested schema, the rest as JSON, and text defused for spreadsheets', async (t) => {
    const x = await startExportServer(t);
    await fill(x);
    const bySchema = await exportCall(x, { ...range, schema: 'meter', format: 'csv' });
    assert.equal(bySchema.status, 200, bySchema.text);
    assert.match(bySchema.headers.get('content-type') ?? '', /^text\/csv/);
    const rows = bySchema.text.split('\r\n');
    assert.equal(rows.pop(), '', 'every row ends with CRLF');
    assert.equal(rows[0], 'device_id,ts,msg_id,schema_id,seq,boot,device_ts,received_at,skew_ms,data.kwh,data.site,data.pin,data.holder,data.volt,data,cursor');
    const cut = (row: string | undefined) =>
      (row ?? '')
        .replace(/,[A-Za-z0-9_-]+$/, '')
        .split(',')
        .slice(0, 3)
        .join(',');
    assert.deepEqual(rows.slice(1).map(cut), [`m-1,${T0 + MIN},b`, `m-1,${T0 + MIN},c`, `m-1,${T0 + 2 * MIN},a`, `m-2,${T0},a`]);
    assert.match(rows[1] ?? '', /,2,,\*\*\*,,230,\{\},[A-Za-z0-9_-]+$/, 'meter@2: kwh, no site, pin masked, no holder, volt');
    assert.match(rows[2] ?? '', /,3,"'=HYPERLINK\(""x""\)",,,,"\{""extra"":\[1\]\}",/, 'a formula is defused; undeclared fields go to data');
    assert.match(rows[3] ?? '', /,1\.5,"north, ""annex""",\*\*\*,\*\*\*,,\{\},/);
    const byTag = (await exportCall(x, { ...range, tag: 'floor_1' }, { headers: { accept: 'text/csv' } })).text.split('\r\n');
    assert.equal(byTag[0], 'device_id,ts,msg_id,schema_id,seq,boot,device_ts,received_at,skew_ms,data,cursor', 'no schema asked for: every field in data');
    assert.match(byTag[1] ?? '', new RegExp(`^e-1,${T0 + 3 * MIN},a,env@1,,,${T0 + 3 * MIN},\\d+,\\d+,"\\{""temp_c"":21\\.5\\}",[A-Za-z0-9_-]+$`));
    assert.equal(byTag.length, 3);
  });

  it('masks fields the schema encrypts unless a caller with telemetry:decrypt asks, and audits every export with its filter', async (t) => {
    const x = await startExportServer(t);
    await fill(x);
    const masked = ndjson((await exportCall(x, { ...range, device: 'm-1' })).text);
    assert.deepEqual(
      masked.map((l) => (l.data as Record<string, unknown>).pin),
      ['***', undefined, '***'],
    );
    assert.deepEqual(
      masked.map((l) => (l.data as Record<string, unknown>).holder),
      [undefined, undefined, '***'],
      'masked at ingest, shown as stored',
    );
    const revealed = ndjson((await exportCall(x, { ...range, device: 'm-1', decrypt: 'true' })).text);
    assert.deepEqual(
      revealed.map((l) => (l.data as Record<string, unknown>).pin),
      ['9876', undefined, '1234'],
    );
    assert.equal((revealed[2]?.data as Record<string, unknown>).holder, '***', 'a masked value cannot be revealed');

    const user = await x.s.api('POST', '/api/v1/users', { token: x.admin, body: { name: 'viewer1', role: 'viewer' } });
    const key = await x.s.api('POST', '/api/v1/keys', { token: x.admin, body: { name: 'v', principalId: user.body.id } });
    const viewer = await x.s.tokenFor(key.body.key);
    assert.equal((await exportCall(x, { ...range, tag: 'meters' }, { token: viewer })).status, 200);
    const refused = await exportCall(x, { ...range, tag: 'meters', decrypt: 'true' }, { token: viewer });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.details.requiredScope, 'telemetry:decrypt');

    const log = (await x.s.api('GET', '/api/v1/audit?action=telemetry.export', { token: x.admin })).body as { actor: string; target: string; details: Record<string, unknown> }[];
    assert.deepEqual(
      log.map((e) => [e.target, e.details.decrypt, e.actor === user.body.id]),
      [
        ['tag:meters', false, true],
        ['device:m-1', true, false],
        ['device:m-1', false, false],
      ],
    );
    assert.deepEqual([log[1]?.details.device, log[1]?.details.since, log[1]?.details.until, log[1]?.details.format], ['m-1', T0, T0 + 60 * MIN, 'ndjson']);
  });

  it('resumes a download cut mid-stream from the last cursor received, with no duplicate and no gap, over the same readings', async (t) => {
    const x = await startExportServer(t);
    const count = 1300; // three pages of the store: 100 readings, then up to 1000
    await insertReadings(x.s, count, (i) => record(i % 3 === 0 ? 'm-2' : 'm-1', `r${i}`, T0 + Math.floor(i / 2) * 1000, 'meter@1', { kwh: i }), 500);
    for (const format of ['ndjson', 'csv'] as const) {
      const query = { ...range, tag: 'meters', format };
      const whole = ids((await exportCall(x, { ...range, tag: 'meters' })).text);
      assert.equal(new Set(whole).size, whole.length);
      assert.ok(whole.length >= count);
      const abort = new AbortController();
      const res = await fetch(`${x.s.url}/api/v1/telemetry/export?${new URLSearchParams(query)}`, { headers: { authorization: `Bearer ${x.admin}` }, signal: abort.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let received = '';
      while (received.split('\n').length < 700) received += Buffer.from((await reader.read()).value ?? []).toString('utf8');
      abort.abort();
      await assert.rejects(reader.read(), 'the connection is cut');
      const lines = received.split('\n');
      lines.pop(); // a partial last line, if any, is dropped as a broken download would
      const last = (lines[lines.length - 1] ?? '').replace(/\r$/, '');
      const cursor = (format === 'csv' ? last.split(',').pop() : JSON.parse(last).cursor) as string;
      // A reading stored after the export began is not part of it, even where the rest still goes.
      await x.s.server.store.telemetry.insertBatch([{ ...record('m-2', `new-${format}`, T0 + 30 * MIN, 'meter@1', { kwh: 0 }), receivedAt: Date.now() + 1 }]);
      const rest = await exportCall(x, { ...query, cursor });
      assert.equal(rest.status, 200, rest.text);
      const keyOf =
        format === 'csv'
          ? (row: string) =>
              row
                .split(',')
                .slice(0, 3)
                .filter((_, i) => i !== 1)
                .join('/')
          : (line: string) => {
              const l = JSON.parse(line) as Record<string, string>;
              return `${l.deviceId}/${l.msgId}`;
            };
      const restLines = rest.text.split(format === 'csv' ? '\r\n' : '\n').filter((l) => l !== '');
      const got = [...lines.slice(format === 'csv' ? 1 : 0).map((l) => keyOf(l.replace(/\r$/, ''))), ...restLines.map(keyOf)];
      assert.ok(restLines.length > 0 && !restLines[0]?.startsWith('device_id'), 'a resumed CSV has no header row');
      assert.deepEqual(got, whole, `${format}: the two parts make the whole export`);
    }
  });
});
