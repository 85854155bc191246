import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { env as envelope, setup } from '../packages/server/src/testing/telemetry.js';
import { type CliProcess, type CliResult, parseJson, runCli, spawnCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';
import { within } from './support/tools.js';

/**
 * `bulwark telemetry query | latest | rollups | live` against a real server, with readings a
 * device sends over the MQTT gateway (mutual TLS). `live` is followed as an operator would:
 * started, sent a reading while it runs, stopped with Ctrl-C (SIGINT).
 */

/** Resolves when the process's standard error matches (live says there when it follows). */
function stderrMatch(p: CliProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pattern.test(p.stderr)) return;
      p.child.stderr.off('data', check);
      resolve();
    };
    p.child.stderr.on('data', check);
    p.closed.then((r) => reject(new Error(`ended before ${pattern}: ${show(r)}`)), reject);
    check();
  });
}

it('queries, reads the latest reading and the rollups, and follows live readings', { timeout: 120_000 }, async (t) => {
  const { s, client } = await setup(t, { id: 'sensor-1' });
  // A saved login caches its access token: the commands run side by side below do not each
  // exchange the key (more than auth.keyLockoutThreshold exchanges at once lock the key out).
  const env = { BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const ok = async (args: readonly string[]): Promise<CliResult> => {
    const r = await runCli(t, args, { env });
    assert.equal(r.code, 0, `bulwark ${args.join(' ')}: ${show(r)}`);
    return r;
  };
  await ok(['login', '--url', s.url, '--key', s.adminKey]);
  const now = Date.now();
  for (const [i, temp] of [18.5, 21, 23.5].entries()) {
    await client.publishAsync('devices/sensor-1/telemetry', envelope(`r-${i}`, { temp_c: temp, note: i === 2 ? 'door "open", again' : 'ok' }, { seq: i + 1, ts: now - (2 - i) * 1000 }), { qos: 1 });
  }

  const [json, ndjson, csv, table, latest, latestTable, rollups, minutes] = await Promise.all([
    ok(['telemetry', 'query', 'sensor-1', '--json']),
    ok(['telemetry', 'query', 'sensor-1', '--output', 'ndjson']),
    ok(['telemetry', 'query', 'sensor-1', '--output', 'csv', '--newest-first', '--limit', '2']),
    ok(['telemetry', 'query', 'sensor-1', '--since', '1h']),
    ok(['telemetry', 'latest', 'sensor-1', '--json']),
    ok(['telemetry', 'latest', 'sensor-1']),
    ok(['telemetry', 'rollups', 'sensor-1', '--field', 'temp_c', '--json']),
    ok(['telemetry', 'rollups', 'sensor-1', '--field', 'temp_c', '--bucket', '1m', '--output', 'csv']),
  ]);
  const all = parseJson(json);
  assert.deepEqual(
    all.map((r: { msgId: string; data: { temp_c: number } }) => [r.msgId, r.data.temp_c]),
    [
      ['r-0', 18.5],
      ['r-1', 21],
      ['r-2', 23.5],
    ],
    'oldest first',
  );
  assert.deepEqual(
    ndjson.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    all,
    'NDJSON: the same readings, one a line',
  );
  const lines = csv.stdout.split('\r\n');
  assert.equal(lines[0], 'msgId,schemaId,seq,boot,deviceTs,receivedAt,ts,skewMs,data.temp_c,data.note');
  assert.match(lines[1]!, /^r-2,env-sensor@1,3,.*,23\.5,"door ""open"", again"$/, 'newest first; a field with a comma and quotes is quoted');
  assert.match(lines[2]!, /^r-1,/);
  assert.equal(lines.length, 4, 'two rows and the final line break');
  assert.match(table.stdout, /env-sensor@1 .* r-0 .* temp_c=18\.5 note="ok"/);
  assert.equal(parseJson(latest).msgId, 'r-2');
  assert.match(latestTable.stdout, /schema +env-sensor@1/);
  assert.match(latestTable.stdout, /temp_c +23\.5/);
  const hours = parseJson(rollups);
  assert.equal(
    hours.reduce((n: number, r: { count: number }) => n + r.count, 0),
    3,
  );
  assert.equal(Math.min(...hours.map((r: { min: number }) => r.min)), 18.5);
  assert.equal(Math.max(...hours.map((r: { max: number }) => r.max)), 23.5);
  assert.match(minutes.stdout, /^field,schemaId,bucketStart,bucketMs,count,min,max,mean\r\ntemp_c,env-sensor@1,\d+,60000,/);

  const unknown = await runCli(t, ['telemetry', 'latest', 'nobody'], { env });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /BULWARK_ERR_NOT_FOUND/);
  const badTime = await runCli(t, ['telemetry', 'query', 'sensor-1', '--since', 'yesterday'], { env });
  assert.equal(badTime.code, 2);

  // Live: a reading sent while the command follows is printed; Ctrl-C ends it with exit 0.
  const live = spawnCli(t, ['telemetry', 'live', 'sensor-1', '--output', 'ndjson'], { env });
  await within(stderrMatch(live, /Following the readings of sensor-1/), 30_000, 'telemetry live following');
  await client.publishAsync('devices/sensor-1/telemetry', envelope('live-1', { temp_c: 22 }, { seq: 4 }), { qos: 1 });
  // The whole line, up to its line break: output may arrive in pieces.
  const [, line = ''] = await within(live.waitFor(/^(.*"msgId":"live-1".*)\n/m), 30_000, 'the live reading');
  assert.deepEqual(JSON.parse(line), { ...JSON.parse(line), deviceId: 'sensor-1', schemaId: 'env-sensor@1', data: { temp_c: 22 } });
  const ended = await live.stop('SIGINT');
  assert.equal(ended.code, 0, show(ended));
  assert.equal(ended.stdout.trim().split('\n').length, 1, 'only the reading sent while it ran');
});
