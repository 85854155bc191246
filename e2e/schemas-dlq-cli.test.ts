import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { type CliResult, parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/**
 * `bulwark schemas` and `bulwark dlq` against real servers, with readings sent by a device over
 * the MQTT gateway (mutual TLS): register and check schemas, send readings the pipeline
 * refuses, find them in the dead-letter store, replay them once the schema exists, purge what
 * was replayed. Two servers behind two saved logins check that --profile picks the right one.
 */

const v1 = {
  $id: 'env-sensor@1',
  type: 'object',
  required: ['temp_c'],
  additionalProperties: false,
  properties: { temp_c: { type: 'number', 'x-unit': 'degC', minimum: -40, maximum: 125 }, note: { type: 'string', maxLength: 64 } },
};

/** Parses RFC 4180 text as the CLI writes it (quoted fields may hold commas and quotes). */
function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  const [head = [], ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

it('registers and checks schemas, lists, shows, replays and purges dead letters, on the server the profile names', { timeout: 120_000 }, async (t) => {
  const [s, other] = await Promise.all([startTestServer(t), startTestServer(t)]);
  const dir = tempDir(t);
  const env = { BULWARK_CLI_CONFIG: join(dir, 'credentials.json') };
  const bulwark = (args: readonly string[], extra: Record<string, string> = {}) => runCli(t, args, { env: { ...env, ...extra } });
  const ok = async (args: readonly string[], extra: Record<string, string> = {}): Promise<CliResult> => {
    const r = await bulwark(args, extra);
    assert.equal(r.code, 0, `bulwark ${args.join(' ')}: ${show(r)}`);
    return r;
  };

  // Two servers: the default login and a second one saved as "staging".
  await ok(['login', '--url', s.url, '--key', s.adminKey]);
  const staged = await ok(['login', '--profile', 'staging', '--url', other.url, '--key', other.adminKey]);
  assert.match(staged.stdout, /as profile "staging"/);
  const saved = JSON.parse(readFileSync(env.BULWARK_CLI_CONFIG, 'utf8'));
  assert.equal(saved.url, s.url, 'the default login keeps its place at the top of the file');
  assert.equal(saved.profiles.staging.url, other.url);

  const file = join(dir, 'env-sensor.json');
  writeFileSync(file, JSON.stringify(v1));
  const unitless = join(dir, 'unitless.json');
  writeFileSync(unitless, JSON.stringify({ ...v1, properties: { temp_c: { type: 'number' } } }));
  const [first, bad] = await Promise.all([ok(['schemas', 'validate', file]), bulwark(['schemas', 'validate', unitless])]);
  assert.match(first.stdout, /env-sensor@1 would register \(the first version of its name\)/);
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stdout, /would not register:\n.*numeric field "temp_c" needs an explicit unit/);

  // --profile (anywhere on the line) and BULWARK_PROFILE pick the staging server; without, the default one.
  assert.match((await ok(['schemas', 'add', file, '--profile', 'staging'])).stdout, /Registered env-sensor@1 \(2 fields\)/);
  const [onDefault, onStaging, unknown] = await Promise.all([ok(['schemas', 'list', '--json']), ok(['schemas', 'list', '--json'], { BULWARK_PROFILE: 'staging' }), bulwark(['--profile', 'nope', 'schemas', 'list'])]);
  assert.deepEqual(parseJson(onDefault), [], 'the default server has no schema yet');
  assert.deepEqual(
    parseJson(onStaging).map((x: { name: string }) => x.name),
    ['env-sensor'],
  );
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /BULWARK_CLI_NOT_LOGGED_IN: no saved login for profile "nope"/);

  await ok(['schemas', 'add', file]);
  const retyped = join(dir, 'v2.json');
  writeFileSync(retyped, JSON.stringify({ ...v1, $id: 'env-sensor@2', properties: { ...v1.properties, temp_c: { type: 'string' } } }));
  const [registered, valid, hot, incompatible, shown, listed, shownNd, both] = await Promise.all([
    ok(['schemas', 'validate', file]),
    ok(['schemas', 'validate', file, '--data', '{"temp_c": 20}']),
    bulwark(['schemas', 'validate', 'env-sensor@1', '--data', '{"temp_c": 500}']),
    bulwark(['schemas', 'validate', retyped, '--json']),
    ok(['schemas', 'show', 'env-sensor']),
    ok(['schemas', 'list', '--output', 'csv']),
    ok(['schemas', 'show', 'env-sensor@1', '--output', 'ndjson']),
    bulwark(['schemas', 'list', '--json', '--output', 'csv']),
  ]);
  assert.match(registered.stdout, /env-sensor@1 is registered, with this very document/);
  assert.match(valid.stdout, /The data is valid against env-sensor@1/);
  assert.equal(hot.code, 1, show(hot));
  assert.match(hot.stdout, /not valid against env-sensor@1:\n {2}\/temp_c: expected .*125, got 500/);
  assert.equal(incompatible.code, 1);
  assert.match(parseJson(incompatible).problems[0], /not compatible with version 1: field "temp_c" changed type/);
  assert.match(shown.stdout, /^env-sensor@1\n/);
  assert.match(shown.stdout, /temp_c .*number .*degC .*-40 .*125/);
  assert.deepEqual(
    parseCsv(listed.stdout).map((r) => [r.id, r.fields]),
    [['env-sensor@1', 'temp_c note']],
  );
  assert.deepEqual(
    shownNd.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).document),
    [v1],
  );
  assert.equal(both.code, 2, 'contradicting output flags are a usage error');

  // A device sends one reading of a schema not registered yet and one out of range: both are refused.
  const device = await enrollDevice(s, await s.tokenFor(s.adminKey), 'dl-1');
  const client = await connectDevice(s, device);
  t.after(() => client.end(true));
  const reading = (id: string, schema: string, data: Record<string, unknown>) => JSON.stringify({ id, seq: 1, ts: Date.now(), schema, data });
  await client.publishAsync('devices/dl-1/telemetry', reading('early-1', 'env-sensor@3', { temp_c: 19.5, note: 'a, "quoted" note' }), { qos: 1 });
  await client.publishAsync('devices/dl-1/telemetry', reading('hot-1', 'env-sensor@1', { temp_c: 500 }), { qos: 1 });

  // Every command that takes --json takes --output too.
  const [devicesCsv, deviceNd] = await Promise.all([ok(['devices', 'list', '--output', 'csv']), ok(['devices', 'show', 'dl-1', '--output', 'ndjson'])]);
  assert.deepEqual(
    parseCsv(devicesCsv.stdout).map((r) => [r.id, r.state]),
    [['dl-1', 'active']],
  );
  assert.equal(JSON.parse(deviceNd.stdout).id, 'dl-1');

  const letters = parseJson<{ id: string; msgId: string; reason: string; problems: unknown[] }[]>(await ok(['dlq', 'list', '--json']));
  assert.deepEqual(letters.map((l) => [l.msgId, l.reason]).sort(), [
    ['early-1', 'unknown_schema'],
    ['hot-1', 'schema_violation'],
  ]);
  const violation = letters.find((l) => l.msgId === 'hot-1');
  const early = letters.find((l) => l.msgId === 'early-1');
  const [table, csv, detail, detailJson, missing] = await Promise.all([
    ok(['dlq', 'list', '--device', 'dl-1']),
    ok(['dlq', 'list', '--reason', 'unknown_schema', '--output', 'csv']),
    ok(['dlq', 'show', violation!.id]),
    ok(['dlq', 'show', early!.id, '--output', 'json']),
    bulwark(['dlq', 'show', 'dl_nope']),
  ]);
  assert.match(table.stdout, new RegExp(`${early!.id} .*dl-1 .*unknown_schema .*env-sensor@3`));
  assert.deepEqual(
    parseCsv(csv.stdout).map((r) => [r.id, r.msgId, r['problems']]),
    [[early!.id, 'early-1', JSON.stringify(early!.problems)]],
  );
  assert.match(detail.stdout, /reason +schema_violation/);
  assert.match(detail.stdout, /Problems:\n {2}\/temp_c: expected/);
  assert.equal(parseJson(detailJson).msgId, 'early-1');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /BULWARK_ERR_NOT_FOUND/);

  // Once the schema exists, replaying by filter stores the early reading; the hot one is refused again.
  writeFileSync(file, JSON.stringify({ ...v1, $id: 'env-sensor@3' }));
  await ok(['schemas', 'add', file]);
  const noFilter = await bulwark(['dlq', 'replay']);
  assert.equal(noFilter.code, 2);
  assert.match(noFilter.stderr, /say which dead letters to replay/);
  const replayed = await ok(['dlq', 'replay', '--reason', 'unknown_schema']);
  assert.match(replayed.stdout, new RegExp(`${early!.id}: stored\\nReplayed 1: 1 stored, 0 not\\.`));
  assert.equal(replayed.stderr, '', 'no progress bar off a terminal');
  const stored = await s.api('GET', '/api/v1/devices/dl-1/telemetry', { token: await s.tokenFor(s.adminKey) });
  assert.deepEqual(
    stored.body.map((r: { msgId: string; data: unknown }) => [r.msgId, r.data]),
    [['early-1', { temp_c: 19.5, note: 'a, "quoted" note' }]],
  );
  assert.deepEqual(
    parseJson(await ok(['dlq', 'list', '--pending', '--json'])).map((l: { msgId: string }) => l.msgId),
    ['hot-1'],
    'the early one was replayed',
  );
  const again = await bulwark(['dlq', 'replay', '--all', '--json']);
  assert.equal(again.code, 1, 'a letter refused again fails the command');
  const outcomes = parseJson(again);
  assert.deepEqual(
    outcomes.map((o: { id: string; status: string; reason: string }) => [o.id, o.status, o.reason]),
    [[violation!.id, 'dead_lettered', 'schema_violation']],
  );
  assert.match((await ok(['dlq', 'replay', early!.id])).stdout, /already stored \(duplicate\)/);

  // Purge asks for --yes, then deletes only what the filter selects: the two replayed letters.
  const unconfirmed = await bulwark(['dlq', 'purge', '--device', 'dl-1', '--replayed']);
  assert.equal(unconfirmed.code, 2, show(unconfirmed));
  assert.match(unconfirmed.stderr, /this deletes 2 dead letters for good: run it again with --yes/);
  assert.equal(parseJson(await ok(['dlq', 'purge', '--device', 'dl-1', '--replayed', '--yes', '--json'])).deleted, 2);
  const left = parseJson(await ok(['dlq', 'list', '--output', 'json']));
  assert.deepEqual(
    left.map((l: { id: string; msgId: string }) => [l.id === outcomes[0].deadLetterId, l.msgId]),
    [[true, 'hot-1']],
  );
  assert.deepEqual(parseJson(await ok(['dlq', 'list', '--json', '--profile', 'staging'])), [], 'the staging server saw none of it');
});
