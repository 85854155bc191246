import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { twoClusterNodes } from '../testing/cluster-nodes.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';

/** A device that applies every desired configuration it is sent and says so. */
async function answering(client: MqttClient, id: string): Promise<void> {
  client.on('message', (topic, payload) => {
    if (topic !== `devices/${id}/twin/desired`) return;
    const desired = JSON.parse(payload.toString()) as { version: number; config: Record<string, unknown> };
    client.publish(`devices/${id}/twin/reported`, JSON.stringify({ version: desired.version, status: 'applied', config: desired.config, ts: Date.now() }), { qos: 1 });
  });
  await client.subscribeAsync(`devices/${id}/twin/desired`, { qos: 1 });
}

/**
 * A job made on one node runs once in the cluster (the `jobs` singleton, wherever it leads),
 * reaches devices on both nodes, and the answers heard on each node end their entries.
 */
describeWith('cluster mode: jobs over groups', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it("dispatches a twin-patch job made through B to devices on A and B, settles it from both nodes' answers, and cancels through A", async (t) => {
    const nodes = await twoClusterNodes(t, nats.url, { jobs: { tickIntervalMs: 50 } });
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const ids = ['cj-a1', 'cj-a2', 'cj-b1', 'cj-b2'];
    for (const id of ids) {
      const node = id.startsWith('cj-a') ? a : b;
      const client = await connectDevice(node, await enrollDevice(a, admin, id));
      t.after(() => client.end(true));
      await answering(client, id);
    }
    assert.equal((await a.api('POST', '/api/v1/groups', { token: admin, body: { id: 'both', kind: 'static', members: ids } })).status, 201);
    const made = await b.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'patch', group: 'both', operation: { type: 'twin-patch', patch: { intervalS: 7 } } } });
    assert.equal(made.status, 201, made.text);
    const done = await eventually(
      async () => (await a.api('GET', `/api/v1/jobs/${made.body.id}`, { token: admin })).body,
      (j) => j.settledAt !== null,
    );
    assert.deepEqual([done.state, done.counts.succeeded], ['completed', 4], JSON.stringify(done.reasons));
    const entries = (await b.api('GET', `/api/v1/jobs/${made.body.id}/devices`, { token: admin })).body as { attempts: number }[];
    assert.ok(
      entries.every((e) => e.attempts === 1),
      'each device dispatched once in the whole cluster',
    );
    for (const id of ids) assert.equal((await b.api('GET', `/api/v1/devices/${id}/twin`, { token: admin })).body.inSync, true, id);

    const slow = await b.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'slow', group: 'both', operation: { type: 'twin-patch', patch: { intervalS: 8 } }, pacing: { ratePerSecond: 1, maxConcurrent: 1 } } });
    const cancelled = await a.api('POST', `/api/v1/jobs/${slow.body.id}/cancel`, { token: admin, body: { reason: 'changed our mind' } });
    assert.equal(cancelled.status, 200, cancelled.text);
    const cancelAt = Date.now();
    const ended = await eventually(
      async () => (await b.api('GET', `/api/v1/jobs/${slow.body.id}`, { token: admin })).body,
      (j) => j.settledAt !== null,
    );
    assert.equal(ended.state, 'cancelled');
    assert.ok(ended.counts.cancelled >= 3, JSON.stringify(ended.counts));
    const dispatched = (await a.api('GET', `/api/v1/jobs/${slow.body.id}/devices`, { token: admin })).body as { dispatchedAt: number | null }[];
    assert.ok(
      dispatched.every((e) => e.dispatchedAt === null || e.dispatchedAt <= cancelAt),
      'nothing dispatched after the cancel answered, on whichever node leads',
    );
  });
});
