import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { T0, exportCall, insertReadings, record, startExportServer } from '../packages/server/src/testing/telemetry-export.js';
import { runCli, tempDir } from './support/cli.js';

/**
 * `bulwark telemetry export` against a real server: to standard output and to a file, through
 * a connection that breaks mid-download (it resumes by itself), and `--resume` of a file an
 * interrupted download left with half a line at its end. The output must equal the API's own
 * export, line for line, once the cursors (which name the moment each export began) are set aside.
 */

const READINGS = 2000;
const range = ['--since', new Date(T0).toISOString(), '--until', String(T0 + READINGS * 1000)];

/** A TCP proxy to `port` that cuts the first connection after it has carried `cutAfter` bytes towards the client. */
async function breakingProxy(t: TestContext, port: number, cutAfter: number): Promise<{ url: string; cuts: () => number }> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let carried = 0;
    upstream.on('data', (chunk: Buffer) => {
      carried += chunk.length;
      if (cuts === 0 && carried > cutAfter) {
        cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.pipe(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cuts: () => cuts };
}

/** Lines without their cursors (NDJSON: the property; CSV: the last column). */
const withoutCursors = (text: string) => text.split('\n').map((l) => l.replace(/,"cursor":"[A-Za-z0-9_-]+"\}$/, '}').replace(/,[A-Za-z0-9_-]+(\r?)$/, ',$1'));

it('exports to standard output and to a file, resumes after a broken connection and from a half-written file', { timeout: 180_000 }, async (t) => {
  const x = await startExportServer(t);
  const pad = 'p'.repeat(400);
  await insertReadings(x.s, READINGS, (i) => record(i % 2 === 0 ? 'm-1' : 'm-2', `r${i}`, T0 + i * 1000, i % 4 === 3 ? 'meter@2' : 'meter@1', { kwh: i, site: pad }));
  const query = { since: new Date(T0).toISOString(), until: String(T0 + READINGS * 1000) };
  const ndjson = (await exportCall(x, { ...query, tag: 'meters' })).text;
  const csv = (await exportCall(x, { ...query, schema: 'meter', format: 'csv' })).text;
  assert.equal(ndjson.split('\n').length, READINGS + 1);
  const dir = tempDir(t);
  const env = { BULWARK_URL: x.s.url, BULWARK_KEY: x.s.adminKey, BULWARK_CLI_CONFIG: join(dir, 'credentials.json') };

  const toStdout = await runCli(t, ['telemetry', 'export', '--tag', 'meters', ...range], { env });
  assert.equal(toStdout.code, 0, toStdout.stderr);
  assert.deepEqual(withoutCursors(toStdout.stdout), withoutCursors(ndjson));
  assert.equal(toStdout.stderr, '', 'no progress on standard error when writing to standard output');

  const proxy = await breakingProxy(t, Number(new URL(x.s.url).port), 300_000);
  const file = join(dir, 'meter.csv');
  const broken = await runCli(t, ['telemetry', 'export', '--schema', 'meter', ...range, '--out', file], { env: { ...env, BULWARK_URL: proxy.url } });
  assert.equal(broken.code, 0, broken.stderr);
  assert.equal(proxy.cuts(), 1, 'the connection was cut once');
  assert.match(broken.stderr, /connection lost .*resuming from the last reading written/);
  assert.match(broken.stderr, new RegExp(`Exported ${READINGS} readings \\([0-9.]+ MB\\) to .*meter\\.csv, resumed 1 time\\.`));
  assert.deepEqual(withoutCursors(readFileSync(file, 'utf8')), withoutCursors(csv), 'the file is the whole export: no duplicate, no gap, one header');

  // A download that stopped in the middle of row 700 (as a killed process leaves it), resumed.
  const rows = readFileSync(file, 'utf8').split('\n');
  writeFileSync(file, `${rows.slice(0, 700).join('\n')}\n${(rows[700] ?? '').slice(0, 50)}`);
  const resumed = await runCli(t, ['telemetry', 'export', '--schema', 'meter', ...range, '--out', file, '--resume'], { env });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`Exported ${READINGS - 699} readings .* more to `));
  assert.deepEqual(withoutCursors(readFileSync(file, 'utf8')), withoutCursors(csv));

  const both = await runCli(t, ['telemetry', 'export', '--device', 'm-1', '--tag', 'meters', ...range], { env });
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /BULWARK_CLI_USAGE: give exactly one of --device, --tag or --schema/);
  const badTime = await runCli(t, ['telemetry', 'export', '--device', 'm-1', '--since', 'yesterday', '--until', 'today'], { env });
  assert.equal(badTime.code, 1, badTime.stderr);
  assert.match(badTime.stderr, /BULWARK_ERR_EXPORT_INVALID: since "yesterday" is not a time/);
  const otherFile = await runCli(t, ['telemetry', 'export', '--device', 'm-1', ...range, '--out', file, '--resume'], { env });
  assert.equal(otherFile.code, 1, 'a file of another export is not resumed');
  assert.match(otherFile.stderr, /BULWARK_ERR_EXPORT_INVALID: cursor belongs to an export with another filter/);
});
