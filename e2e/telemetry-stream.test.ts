import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type TestContext, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { FaultProxy } from '../packages/agent/src/testing/proxy.js';
import { until } from '../packages/agent/src/testing/until.js';
import { metricValue } from '../packages/server/src/testing/cluster-nodes.js';
import { connectDevice, enrollDevice } from '../packages/server/src/testing/devices.js';
import { type TestServer, newAdminKey, startTestServer } from '../packages/server/src/testing/harness.js';
import { freshPgSchema, pgTestUrl, withPgConnection } from '../packages/server/src/testing/pg.js';
import { describeWith, startNats, startNatsCluster } from '../packages/server/src/testing/services.js';
import { schema } from '../packages/server/src/testing/telemetry.js';

/**
 * Cluster mode's telemetry stream under faults, with real parts: two Bulwark nodes, a
 * 3-server NATS cluster (the stream replicated three times), PostgreSQL reached through a
 * TCP fault proxy (a test cannot own a PostgreSQL server here, and must not stop the shared
 * one). Devices publish QoS 1 all along. The outage length is a parameter:
 * BULWARK_TEST_STREAM_OUTAGE_MS (3 s in `npm test`, 60 s in `npm run test:long`).
 */
const OUTAGE_MS = Number(process.env.BULWARK_TEST_STREAM_OUTAGE_MS ?? 3_000);
const DEVICES = 6;
const PAUSE_MS = 20;

/**
 * A fresh schema whose nodes (pushed to `nodes`) stop before it is dropped, and PostgreSQL
 * reached through a fault proxy. Hooks run in the order they are added: the nodes stop (and
 * the schema is dropped) first, then the proxy closes, then what the caller adds after this.
 */
async function behindFaultProxy(t: TestContext, pgUrl: string): Promise<{ nodes: TestServer[]; pgSchema: string; proxy: FaultProxy; proxied: URL }> {
  const nodes: TestServer[] = [];
  const pgSchema = await freshPgSchema(t, pgUrl, async () => {
    for (const n of nodes.reverse()) await n.server.stop();
  });
  const target = new URL(pgUrl);
  const proxy = new FaultProxy(Number(target.port || 5432), target.hostname);
  await proxy.start();
  t.after(() => proxy.close());
  const proxied = new URL(pgUrl);
  proxied.port = String(proxy.port);
  return { nodes, pgSchema, proxy, proxied };
}

describeWith('telemetry stream in cluster mode', ['nats-server'], () => {
  it(`PostgreSQL unreachable for ${OUTAGE_MS} ms, then a NATS server killed, under load: devices acknowledged throughout, every acknowledged reading stored once, rollups count each once`, { timeout: 600_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const { nodes, pgSchema, proxy, proxied } = await behindFaultProxy(t, pgUrl);
    const nats = await startNatsCluster(3);
    t.after(() => nats.stop());
    const adminKey = newAdminKey();
    const env = { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') };
    for (const nodeId of ['node-a', 'node-b']) {
      nodes.push(await startTestServer(t, { config: { store: proxied.toString(), bus: nats.url, nodeId, cluster: { replicas: 3, leaseMs: 3_000 } }, pgSchema, adminKey, env, keepRunning: true }));
    }
    const [a, b] = nodes as [TestServer, TestServer];
    const admin = await a.tokenFor(adminKey);
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);

    // Devices on both nodes, each publishing QoS 1 one after another; every PUBACK recorded.
    const acked = new Map<string, string[]>();
    const clients: MqttClient[] = [];
    for (let i = 0; i < DEVICES; i += 1) {
      const id = `st-${i}`;
      const node = i % 2 === 0 ? a : b;
      const client = await connectDevice(node, await enrollDevice(node, admin, id), { reconnectPeriod: 200 });
      t.after(() => client.end(true));
      clients.push(client);
      acked.set(id, []);
    }
    let sending = true;
    const ackedCount = () => [...acked.values()].reduce((n, ids) => n + ids.length, 0);
    const senders = clients.map(async (client, i) => {
      const id = `st-${i}`;
      for (let n = 0; sending; n += 1) {
        const msgId = `${id}-${n}`;
        const payload = JSON.stringify({ id: msgId, seq: n, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 20 + (n % 10) } });
        try {
          await client.publishAsync(`devices/${id}/telemetry`, payload, { qos: 1 });
          acked.get(id)?.push(msgId);
        } catch {
          // Not acknowledged: the device may send it again; it need not be stored.
        }
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    });
    const progressed = async (what: string, more: number) => {
      const from = ackedCount();
      await until(what, () => ackedCount() >= from + more, 60_000);
    };
    await progressed('readings acknowledged before the outage', 50);
    t.diagnostic(`${ackedCount()} acknowledged before the outage`);

    // 1. PostgreSQL unreachable: every connection cut, new ones refused.
    proxy.refuse(true);
    proxy.cut();
    const atCut = ackedCount();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    assert.ok(ackedCount() > atCut + 10, `devices are still acknowledged while PostgreSQL is away (${ackedCount() - atCut} in ${OUTAGE_MS} ms)`);
    const lag = await metricValue(a, 'bulwark_stream_writer_lag_messages');
    assert.ok(lag > 0, `the backlog shows as writer lag (${lag})`);
    proxy.refuse(false);
    await progressed('readings acknowledged after PostgreSQL is back', 50);

    // 2. A NATS server dies (the one listed first, which both nodes use).
    await nats.servers[0]?.kill();
    await progressed('readings acknowledged after a NATS server died', 100);
    sending = false;
    await Promise.all(senders);

    // Every acknowledged reading is stored exactly once, and counted once in the rollups.
    const expected = new Map([...acked].map(([id, ids]) => [id, new Set(ids)]));
    const total = ackedCount();
    const stored = async () => withPgConnection(pgUrl, async (c) => (await c.query<{ device_id: string; msg_id: string }>(`SELECT device_id, msg_id FROM ${pgSchema}.telemetry`)).rows);
    let rows: { device_id: string; msg_id: string }[] = [];
    const missing = () => {
      const keys = new Set(rows.map((r) => `${r.device_id}/${r.msg_id}`));
      return [...expected].flatMap(([id, ids]) => [...ids].filter((m) => !keys.has(`${id}/${m}`)));
    };
    await until(
      `every acknowledged reading stored (${total})`,
      async () => {
        rows = await stored();
        return missing().length === 0;
      },
      120_000,
    ).catch(() => undefined);
    assert.deepEqual(missing(), []);
    const rollups = await withPgConnection(pgUrl, async (c) => (await c.query<{ device_id: string; n: number }>(`SELECT device_id, sum(count)::int AS n FROM ${pgSchema}.telemetry_rollups WHERE field = 'temp_c' AND bucket_ms = 60000 GROUP BY device_id`)).rows);
    const perDevice = new Map<string, number>();
    for (const r of rows) perDevice.set(r.device_id, (perDevice.get(r.device_id) ?? 0) + 1);
    for (const { device_id: id, n } of rollups) assert.equal(n, perDevice.get(id), `${id}: each stored reading counted once in its rollup`);
    assert.equal(rollups.length, DEVICES);
    t.diagnostic(`${total} readings acknowledged, ${rows.length} stored (an unacknowledged one may be stored too), outage ${OUTAGE_MS} ms`);
  });

  it('a stream nearly full of unstored readings refuses new ones (never pushes unstored ones out), and accepts again once the writers catch up', { timeout: 300_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const { nodes, pgSchema, proxy, proxied } = await behindFaultProxy(t, pgUrl);
    const nats = await startNats();
    t.after(() => nats.stop());
    const adminKey = newAdminKey();
    // 1 MiB of stream: the guard refuses once unstored readings take 80 % of it.
    const a = await startTestServer(t, {
      config: { store: proxied.toString(), bus: nats.url, nodeId: 'node-a', stream: { maxBytes: 1_048_576 }, mqtt: { publishRatePerSecond: 5_000, publishBurst: 5_000 } },
      pgSchema,
      adminKey,
      env: { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') },
      keepRunning: true,
    });
    nodes.push(a);
    const admin = await a.tokenFor(adminKey);
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const client = await connectDevice(a, await enrollDevice(a, admin, 'full-1'), { reconnectPeriod: 200 });
    t.after(() => client.end(true));
    // A refused reading ends the session (MQTT has no way to say "later" on a PUBACK to 3.1.1); the client resends it after reconnecting.
    const acked: string[] = [];
    const pending: Promise<void>[] = [];
    let n = 0;
    const fire = () => {
      const msgId = `f-${n++}`;
      const sent = client.publishAsync('devices/full-1/telemetry', JSON.stringify({ id: msgId, schema: 'env-sensor@1', data: { temp_c: 20, note: 'x'.repeat(64) } }), { qos: 1 }).then(
        () => void acked.push(msgId),
        () => undefined,
      );
      pending.push(sent);
      return sent;
    };
    const refusing = async () => (await metricValue(a, 'bulwark_stream_refusing')) === 1;
    // The node reads a schema from the store the first time it meets it: one reading before the cut.
    await fire();
    proxy.refuse(true);
    proxy.cut();
    // Until the guard (every 2 s) sees unstored readings past 80 % of the stream; bounded by the stream's size.
    while (!(await refusing())) {
      await Promise.race([Promise.all(Array.from({ length: 200 }, fire)), until('refusing', refusing, 60_000)]).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}: ${acked.length} acknowledged of ${n}, writer lag ${await metricValue(a, 'bulwark_stream_writer_lag_messages')}`);
      });
      assert.ok(acked.length < 20_000, `the guard never refused (${acked.length} acknowledged into a 1 MiB stream)`);
    }
    proxy.refuse(false);
    await until('accepting again once the writers caught up', async () => !(await refusing()), 60_000);
    // What was acknowledged before and after: all stored, none pushed out of the full stream unstored.
    await Promise.race([Promise.all(pending), until('the readings in flight acknowledged', () => acked.length === n, 60_000)]).catch(() => undefined);
    const rows = async () => withPgConnection(pgUrl, async (c) => (await c.query<{ msg_id: string }>(`SELECT msg_id FROM ${pgSchema}.telemetry WHERE device_id = 'full-1'`)).rows.map((r) => r.msg_id));
    await until(
      'every acknowledged reading stored',
      async () => {
        const stored = new Set(await rows());
        return acked.every((m) => stored.has(m));
      },
      60_000,
    );
    t.diagnostic(`${acked.length} acknowledged in a 1 MiB stream, refused while nearly full and resent`);
  });
});
