import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { twoClusterNodes } from '../testing/cluster-nodes.js';
import { nextMessage } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import type { TestServer } from '../testing/harness.js';
import { env, schema } from '../testing/telemetry.js';
import { type NatsCluster, describeWith, startNatsCluster } from '../testing/services.js';
import { eventually } from '../testing/eventually.js';

/**
 * Two Bulwark nodes on a three-server NATS cluster whose buckets keep three copies
 * (`cluster.replicas` 3): the loss of the NATS server a node is connected to costs that node
 * a reconnect, and nothing else.
 */
describeWith('cluster mode: a NATS server dies', ['nats-server'], () => {
  let nats: NatsCluster;
  before(async () => {
    nats = await startNatsCluster(3);
  });
  after(() => nats.stop());

  it('kill -9 of the NATS server node A uses: A reconnects to another, its sessions stay, deliveries, claims and leases keep working', async (t) => {
    const nodes = await twoClusterNodes(t, nats.url, { cluster: { replicas: 3 }, log: { level: 'warn' } });
    if (!nodes) return;
    const { a, b, admin } = nodes;
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const device = await enrollDevice(a, admin, 'gw-n1');
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    await client.subscribeAsync('devices/gw-n1/commands/+', { qos: 1 });
    await client.publishAsync('devices/gw-n1/telemetry', env('before-1', { temp_c: 20 }), { qos: 1 });

    const link = a.server.cluster?.link;
    assert.ok(link);
    const used = nats.servers.find((s) => s.port === link.nc.info?.port);
    assert.ok(used, `A is connected to one of the cluster's servers (${String(link.nc.info?.port)})`);
    const back = new Promise<void>((resolve) => link.onReconnect(resolve));
    await used.kill();
    await back;
    assert.notEqual(link.nc.info?.port, used.port, 'A moved to a surviving server');

    // The session on A outlived the NATS outage; a command through B still reaches it through A.
    const got = nextMessage(client, 'devices/gw-n1/commands/ping');
    const issued = await eventually(
      () => b.api('POST', '/api/v1/devices/gw-n1/commands/ping', { token: admin, body: { ifOffline: 'refuse' } }),
      (r) => r.status === 201 && r.body.status === 'sent',
    );
    assert.equal((await got).id, issued.body.id);
    await client.publishAsync('devices/gw-n1/telemetry', env('after-1', { temp_c: 21 }), { qos: 1 });
    // Acknowledged = in the telemetry stream; the store writers store it a moment later.
    const stored = await eventually(
      () => b.api('GET', '/api/v1/devices/gw-n1/telemetry?limit=10', { token: admin }),
      (r) => r.body.length >= 2,
    );
    assert.deepEqual(stored.body.map((r: { msgId: string }) => r.msgId).sort(), ['after-1', 'before-1']);

    // The session directory (three copies) still takes claims: a new device is admitted on A and B routes to it.
    const second = await enrollDevice(b, admin, 'gw-n2');
    // (A device whose connection comes while the bucket elects a new leader may be told to retry: agents do.)
    const c2 = await eventually(
      () => connectDevice(a, second).catch(() => undefined),
      (c) => c !== undefined,
    );
    assert.ok(c2);
    t.after(() => c2.end(true));
    await c2.subscribeAsync('devices/gw-n2/commands/+', { qos: 1 });
    const got2 = nextMessage(c2, 'devices/gw-n2/commands/ping');
    // B learns of the claim through its watch of the bucket (a moment later).
    const issued2 = await eventually(
      () => b.api('POST', '/api/v1/devices/gw-n2/commands/ping', { token: admin, body: { ifOffline: 'refuse' } }),
      (r) => r.status === 201,
    );
    assert.equal(issued2.body.status, 'sent', issued2.text);
    assert.equal((await got2).id, issued2.body.id);

    // Every singleton still has exactly one leader, and both nodes are alive.
    const expected = ['alert-notifier', 'alert-sweep', 'audit-checkpoints', 'crl', 'dead-letter-writer', 'device-sweep', 'fleet-counts', 'jobs', 'retention', 'rollouts', 'webhooks', ...Array.from({ length: 8 }, (_, p) => `store-writer-${p}`)].sort();
    const cluster = await eventually(
      () => clusterView(b, admin),
      (v) => v.every((n) => n.alive) && v.flatMap((n) => n.leads).length === expected.length,
    );
    assert.deepEqual(cluster.flatMap((n) => n.leads).sort(), expected);
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
  });
});

async function clusterView(s: TestServer, token: string): Promise<{ id: string; alive: boolean; leads: string[] }[]> {
  const res = await s.api('GET', '/api/v1/cluster', { token });
  return res.status === 200 ? res.body.nodes : [];
}
