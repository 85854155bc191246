import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type TestContext, after, before, it } from 'node:test';
import { nextMessage } from '../testing/device-messages.js';
import { closed, connectDevice, enrollDevice } from '../testing/devices.js';
import { type TestServer, newAdminKey, startTestServer } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl } from '../testing/pg.js';
import { env, schema, sseReader } from '../testing/telemetry.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { eventually } from '../testing/eventually.js';

/**
 * Two Bulwark nodes on one PostgreSQL schema and one nats-server, as cluster mode runs them:
 * everything that reaches a device works through the node that does not hold its session.
 */
describeWith('cluster mode: two nodes over NATS and PostgreSQL', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  async function twoNodes(t: TestContext, cluster: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Promise<{ a: TestServer; b: TestServer; admin: string; restartB(): Promise<TestServer>; stopA(): Promise<void> } | undefined> {
    const url = pgTestUrl(t);
    if (url === undefined) return undefined;
    const pgSchema = await freshPgSchema(t, url);
    const adminKey = newAdminKey();
    // Every node holds the same master key (here from the environment).
    const env = { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') };
    const node = (nodeId: string) => startTestServer(t, { config: { ...config, store: url, bus: nats.url, nodeId, cluster }, pgSchema, adminKey, env, keepRunning: true });
    const a = await node('node-a');
    let b = await node('node-b');
    let aStopped: Promise<void> | undefined;
    const stopA = () => (aStopped ??= a.server.stop());
    t.after(async () => {
      await b.server.stop();
      await stopA();
    });
    return {
      a,
      b,
      admin: await a.tokenFor(adminKey),
      stopA,
      async restartB() {
        await b.server.stop();
        b = await node('node-b');
        return b;
      },
    };
  }

  it("routes a command and a twin change through node B to a device connected to node A, lists both nodes, and keeps A's devices online when B restarts", async (t) => {
    const nodes = await twoNodes(t);
    if (!nodes) return;
    const { a, admin } = nodes;
    let { b } = nodes;
    const device = await enrollDevice(a, admin, 'gw-a1');
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    await client.subscribeAsync('devices/gw-a1/commands/+', { qos: 1 });

    const got = nextMessage(client, 'devices/gw-a1/commands/reboot');
    const issued = await b.api('POST', '/api/v1/devices/gw-a1/commands/reboot', { token: admin, body: { params: { delayS: 1 }, ifOffline: 'refuse' } });
    assert.equal(issued.status, 201, issued.text);
    assert.equal(issued.body.status, 'sent', 'node B knows the device is connected (on A) and delivers through A');
    assert.equal((await got).id, issued.body.id);

    // Twin desired configuration set through B reaches the device on A.
    await client.subscribeAsync('devices/gw-a1/twin/desired', { qos: 1 });
    const desired = nextMessage(client, 'devices/gw-a1/twin/desired');
    const set = await b.api('PUT', '/api/v1/devices/gw-a1/twin/desired', { token: admin, body: { config: { rateS: 5 } } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual((await desired).config, { rateS: 5 });

    const cluster = await b.api('GET', '/api/v1/cluster', { token: admin });
    assert.equal(cluster.status, 200, cluster.text);
    assert.equal(cluster.body.mode, 'cluster');
    assert.equal(cluster.body.self, 'node-b');
    const byId = new Map(cluster.body.nodes.map((n: { id: string }) => [n.id, n]));
    assert.deepEqual([...byId.keys()].sort(), ['node-a', 'node-b']);
    assert.equal((byId.get('node-a') as { sessions: number; alive: boolean }).alive, true);

    b = await nodes.restartB();
    const seen = await b.api('GET', '/api/v1/devices/gw-a1', { token: admin });
    assert.equal(seen.body.connectivity.online, true, 'a starting node marks offline only its own devices');
    assert.equal(client.connected, true);
    const again = nextMessage(client, 'devices/gw-a1/commands/ping');
    const second = await b.api('POST', '/api/v1/devices/gw-a1/commands/ping', { token: admin, body: { ifOffline: 'refuse' } });
    assert.equal(second.body.status, 'sent', 'a restarted node loads where every device is');
    assert.equal((await again).id, second.body.id);
  });

  it('kicks a device on node A when it is revoked or suspended through node B', async (t) => {
    const nodes = await twoNodes(t);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const revoked = await enrollDevice(a, admin, 'gw-r1');
    const suspended = await enrollDevice(a, admin, 'gw-s1');
    const [c1, c2] = await Promise.all([connectDevice(a, revoked), connectDevice(a, suspended)]);
    t.after(() => {
      c1.end(true);
      c2.end(true);
    });
    const gone1 = closed(c1);
    assert.equal((await b.api('POST', '/api/v1/devices/gw-r1/revoke', { token: admin, body: { reason: 'key leaked' } })).status, 200);
    await gone1;
    const gone2 = closed(c2);
    assert.equal((await b.api('POST', '/api/v1/devices/gw-s1/suspend', { token: admin, body: {} })).status, 200);
    await gone2;
    await a.server.registry.flushConnectivity();
    const d = await b.api('GET', '/api/v1/devices/gw-r1', { token: admin });
    assert.equal(d.body.connectivity.online, false);
    assert.equal(d.body.connectivity.lastDisconnectReason, 'certificate_revoked');
  });

  it('keeps one session per device across the nodes: a connection on B takes over the one on A', async (t) => {
    const nodes = await twoNodes(t);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const device = await enrollDevice(a, admin, 'gw-t1');
    const onA = await connectDevice(a, device);
    t.after(() => onA.end(true));
    const aClosed = closed(onA);
    const onB = await connectDevice(b, device);
    t.after(() => onB.end(true));
    await aClosed;
    await Promise.all([a.server.registry.flushConnectivity(), b.server.registry.flushConnectivity()]);
    const d = await a.api('GET', '/api/v1/devices/gw-t1', { token: admin });
    assert.equal(d.body.connectivity.online, true, "the old node's late disconnect leaves the new session alone");
    assert.equal(d.body.connectivity.connectCount, 2);
    assert.equal(onB.connected, true);
    // Deliveries through A now go to B.
    await onB.subscribeAsync('devices/gw-t1/commands/+', { qos: 1 });
    const got = nextMessage(onB, 'devices/gw-t1/commands/ping');
    const issued = await a.api('POST', '/api/v1/devices/gw-t1/commands/ping', { token: admin, body: { ifOffline: 'refuse' } });
    assert.equal(issued.body.status, 'sent', issued.text);
    assert.equal((await got).id, issued.body.id);
  });

  it('streams to a live subscriber on node B the readings a device sends to node A, traces them across both nodes, and honours stream tickets of any node once', async (t) => {
    // Every reading traced: its hops on A (gateway, pipeline, the stream append), the store writer's, and B's live fan-out.
    const nodes = await twoNodes(t, {}, { tracing: { sampleEvery: 1 } });
    if (!nodes) return;
    const { a, b, admin } = nodes;
    assert.equal((await a.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const device = await enrollDevice(a, admin, 'gw-l1');
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    const abort = new AbortController();
    t.after(() => abort.abort());
    const res = await fetch(`${b.url}/api/v1/devices/gw-l1/telemetry/live`, { headers: { authorization: `Bearer ${admin}` }, signal: abort.signal });
    assert.equal(res.status, 200);
    const next = sseReader(res);
    assert.equal((await next()).event, 'ready');
    // B reads the telemetry stream from the moment it said "ready"
    for (let i = 0; i < 3; i += 1) await client.publishAsync('devices/gw-l1/telemetry', env(`x-${i}`, { temp_c: 20 + i }), { qos: 1 });
    const got = [await next(), await next(), await next()];
    assert.deepEqual(
      got.map((e) => [e.event, e.data.deviceId, e.data.msgId, e.data.data]),
      [0, 1, 2].map((i) => ['reading', 'gw-l1', `x-${i}`, { temp_c: 20 + i }]),
    );

    // One trace of x-2 over both nodes: received and committed into the stream on A, stored by a store writer, heard on B.
    type Hop = { name: string; node: string; parentSpanId: string | null; spanId: string };
    const hops = await eventually(
      async () => {
        const r = await b.api('GET', '/api/v1/devices/gw-l1/telemetry/x-2/trace', { token: admin });
        return (r.body as { traces?: { spans: Hop[] }[] }).traces?.[0]?.spans ?? [];
      },
      (spans) => spans.some((s) => s.name === 'stream.write') && spans.some((s) => s.name === 'live.fanout' && s.node === 'node-b'),
    );
    const root = hops.find((s) => s.name === 'telemetry.message');
    assert.equal(root?.node, 'node-a');
    for (const name of ['gateway.receive', 'pipeline.validate', 'ingest.commit', 'alerts.feed', 'gateway.ack']) assert.equal(hops.find((s) => s.name === name)?.node, 'node-a', name);
    for (const s of hops.filter((x) => x !== root)) assert.equal(s.parentSpanId, root?.spanId, `${s.name} (${s.node}) is a child of the message's span`);

    // A stream ticket (what a browser's EventSource uses) issued by A opens a stream on B, once.
    const status = async (s: TestServer, path: string) => {
      const ac = new AbortController();
      const r = await fetch(s.url + path, { signal: ac.signal });
      ac.abort();
      return r.status;
    };
    const ticket = (await a.api('POST', '/api/v1/auth/stream-ticket', { token: admin })).body.ticket as string;
    assert.equal(await status(b, `/api/v1/telemetry/live?ticket=${ticket}`), 200);
    assert.equal(await status(a, `/api/v1/telemetry/live?ticket=${ticket}`), 401, 'spent on B: refused on A');
    assert.equal(await status(b, `/api/v1/telemetry/live?ticket=bst.${'x'.repeat(43)}`), 401);
  });

  it("runs each singleton on exactly one node, shares the stream's store writers out between the nodes, and moves both to the other node when a node stops", async (t) => {
    const nodes = await twoNodes(t, { leaseMs: 1_000 });
    if (!nodes) return;
    const { b, admin } = nodes;
    const leaders = async (s: TestServer) => {
      const body = (await s.api('GET', '/api/v1/cluster', { token: admin })).body as { nodes: { id: string; alive: boolean; leads: string[] }[] };
      return body.nodes
        .filter((n) => n.alive)
        .flatMap((n) => n.leads.map((job) => `${job}@${n.id}`))
        .sort();
    };
    const singletons = ['alert-notifier', 'alert-sweep', 'audit-checkpoints', 'crl', 'dead-letter-writer', 'device-sweep', 'fleet-counts', 'jobs', 'retention', 'rollouts', 'webhooks'];
    const writers = Array.from({ length: 8 }, (_, p) => `store-writer-${p}`);
    const isWriter = (x: string) => x.startsWith('store-writer-');
    // Node A started first and took every singleton lease; the eight partition writers end up four on each node.
    const shared = await eventually(
      () => leaders(b),
      (l) => l.length === singletons.length + writers.length && l.filter((x) => isWriter(x) && x.endsWith('@node-b')).length === 4,
    );
    assert.deepEqual(
      shared.filter((x) => !isWriter(x)),
      singletons.map((job) => `${job}@node-a`),
    );
    assert.deepEqual(
      shared
        .filter(isWriter)
        .map((x) => x.split('@')[0])
        .sort(),
      writers,
    );
    await nodes.stopA();
    const all = [...singletons, ...writers].sort();
    assert.deepEqual(
      await eventually(
        () => leaders(b),
        (l) => l.every((x) => x.endsWith('@node-b')) && l.length === all.length,
      ),
      all.map((job) => `${job}@node-b`),
    );
  });
});
