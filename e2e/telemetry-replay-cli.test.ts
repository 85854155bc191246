import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { twoClusterNodes } from '../packages/server/src/testing/cluster-nodes.js';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { eventually } from '../packages/server/src/testing/eventually.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { withPgConnection } from '../packages/server/src/testing/pg.js';
import { type RunningEngine, describeWith, startNats } from '../packages/server/src/testing/services.js';
import { env, schema } from '../packages/server/src/testing/telemetry.js';
import { runCli, tempDir } from './support/cli.js';

describeWith('bulwark telemetry replay', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it('puts readings lost from PostgreSQL back from the stream and prints what it did; a second run writes nothing', { timeout: 120_000 }, async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, admin, pg } = nodes;
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const client = await connectDevice(a, await enrollDevice(a, admin, 'cli-r1'));
    t.after(() => client.end(true));
    const since = new Date(Date.now() - 1).toISOString();
    for (let i = 0; i < 5; i += 1) await client.publishAsync('devices/cli-r1/telemetry', env(`c-${i}`, { temp_c: i }), { qos: 1 });
    const until = new Date(Date.now() + 1).toISOString();
    const rows = () => withPgConnection(pg.url, async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${pg.schema}.telemetry WHERE device_id = 'cli-r1'`)).rows[0].n));
    await eventually(rows, (n) => n === 5);
    await withPgConnection(pg.url, (c) => c.query(`DELETE FROM ${pg.schema}.telemetry WHERE device_id = 'cli-r1'`));

    const cli = { BULWARK_URL: a.url, BULWARK_KEY: a.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
    const first = await runCli(t, ['telemetry', 'replay', '--since', since, '--until', until, '--device', 'cli-r1'], { env: cli });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /done: 5 readings read from the stream, 5 written to the store, 0 already there/);
    assert.equal(await rows(), 5);
    const second = await runCli(t, ['telemetry', 'replay', '--since', since, '--until', until, '--json'], { env: cli });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual((({ state, inserted, repeats }) => ({ state, inserted, repeats }))(JSON.parse(second.stdout) as Record<string, unknown>), { state: 'done', inserted: 0, repeats: 5 });
  });
});

it('bulwark telemetry replay in embedded mode exits 1 and says why', { timeout: 60_000 }, async (t) => {
  const s = await startTestServer(t);
  const cli = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const res = await runCli(t, ['telemetry', 'replay', '--since', '2026-12-01', '--until', '2026-12-02'], { env: cli });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /only cluster mode has/);
});
