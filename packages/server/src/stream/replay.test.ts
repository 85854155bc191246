import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { twoClusterNodes } from '../testing/cluster-nodes.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { newAdminKey, startTestServer } from '../testing/harness.js';
import { withPgConnection } from '../testing/pg.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { env, schema } from '../testing/telemetry.js';

describeWith('replay of the telemetry stream into the store', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it('rebuilds readings and rollups lost from PostgreSQL (as after restoring an older backup) from the stream, once: a second replay writes nothing', async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin, pg } = nodes;
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const client = await connectDevice(a, await enrollDevice(a, admin, 'rp-1'));
    t.after(() => client.end(true));
    const since = Date.now() - 1;
    for (let i = 0; i < 20; i += 1) await client.publishAsync('devices/rp-1/telemetry', env(`r-${i}`, { temp_c: i }), { qos: 1 });
    const until = Date.now() + 1;
    const count = async (table: string, where = "device_id = 'rp-1'") => withPgConnection(pg.url, async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${pg.schema}.${table} WHERE ${where}`)).rows[0].n));
    const rollupSum = async () => withPgConnection(pg.url, async (c) => Number((await c.query(`SELECT coalesce(sum(count), 0) AS n FROM ${pg.schema}.telemetry_rollups WHERE device_id = 'rp-1' AND bucket_ms = 60000`)).rows[0].n));
    await eventually(
      () => count('telemetry'),
      (n) => n === 20,
    );
    assert.equal(await count('telemetry_feed'), 0, 'the stream is the feed in cluster mode: the writers skip the feed table');
    await withPgConnection(pg.url, async (c) => {
      await c.query(`DELETE FROM ${pg.schema}.telemetry WHERE device_id = 'rp-1' AND msg_id <> 'r-0'`);
      await c.query(`DELETE FROM ${pg.schema}.telemetry_rollups WHERE device_id = 'rp-1'`);
    });

    // Through node B (either node reads the whole stream); the job is listed there.
    const started = await b.api('POST', '/api/v1/telemetry/replay', { token: admin, body: { since: String(since), until: String(until), device: 'rp-1' } });
    assert.equal(started.status, 202, started.text);
    const done = await eventually(
      async () => (await b.api('GET', `/api/v1/telemetry/replay/${started.body.id}`, { token: admin })).body,
      (j) => j.state !== 'running',
    );
    assert.deepEqual([done.state, done.read, done.inserted, done.repeats], ['done', 20, 19, 1]);
    assert.equal(await count('telemetry'), 20);
    assert.equal(await rollupSum(), 19, 'the rollups count what the replay wrote (r-0 was kept, with its rollup lost as in an older backup)');

    const again = await b.api('POST', '/api/v1/telemetry/replay', { token: admin, body: { since: new Date(since).toISOString(), until: new Date(until).toISOString() } });
    const second = await eventually(
      async () => (await b.api('GET', `/api/v1/telemetry/replay/${again.body.id}`, { token: admin })).body,
      (j) => j.state !== 'running',
    );
    assert.deepEqual([second.state, second.inserted, second.repeats], ['done', 0, 20]);
    assert.equal(await rollupSum(), 19, 'nothing folded twice');
    assert.equal((await b.api('GET', '/api/v1/telemetry/replay', { token: admin })).body.length, 2);
    const audit = (await a.api('GET', '/api/v1/audit?action=telemetry.replay', { token: admin })).body as { action: string }[];
    assert.equal(audit.length, 2);

    const bad = await b.api('POST', '/api/v1/telemetry/replay', { token: admin, body: { since: 'yesterday', until: String(until) } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'BULWARK_ERR_BAD_REQUEST');
    const backwards = await b.api('POST', '/api/v1/telemetry/replay', { token: admin, body: { since: String(until), until: String(since) } });
    assert.equal(backwards.status, 400);
  });
});

it('embedded mode has no stream to replay: 409 with the reason', async (t) => {
  const adminKey = newAdminKey();
  const s = await startTestServer(t, { adminKey });
  const admin = await s.tokenFor(adminKey);
  const res = await s.api('POST', '/api/v1/telemetry/replay', { token: admin, body: { since: '0', until: '1000' } });
  assert.equal(res.status, 409);
  assert.match(res.body.error.message, /only cluster mode/);
});
