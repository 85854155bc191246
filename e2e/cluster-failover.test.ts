import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import type { Agent } from '../packages/agent/src/agent.js';
import { agentDir, startAgent } from '../packages/agent/src/testing/agents.js';
import { SCHEMA } from '../packages/agent/src/testing/platform.js';
import { until } from '../packages/agent/src/testing/until.js';
import { newAdminKey } from '../packages/server/src/testing/harness.js';
import { pgTestUrl, withPgConnection } from '../packages/server/src/testing/pg.js';
import { describeWith, startHaproxy, startNats } from '../packages/server/src/testing/services.js';
import { tempDir } from './support/cli.js';
import { type StartedServer, startServer } from './support/server.js';

/**
 * Failover, CI-sized (BULWARK_TEST_FAILOVER_AGENTS, default 30; `npm run test:long` runs 200):
 * three `bulwark start` nodes on one PostgreSQL database and one nats-server behind HAProxy,
 * real agents sending QoS 1 through HAProxy with their default backoff, and `kill -9` of the
 * node that holds the most sessions mid-run.
 */
const AGENTS = Number(process.env.BULWARK_TEST_FAILOVER_AGENTS ?? 30);
const READINGS_BEFORE_KILL = 5;
const LEASE_MS = 3_000;

describeWith('cluster failover', ['nats-server', 'haproxy'], () => {
  it(`kill -9 of one of three nodes: its ${AGENTS} agents' devices come back through the others, no acknowledged reading lost or stored twice`, { timeout: 600_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const nodes: StartedServer[] = [];
    // Registered first, so it runs first: the nodes die before their database is dropped.
    const store = await freshDatabase(t, pgUrl, async () => {
      for (const n of nodes) {
        if (n.process.running) n.process.child.kill('SIGKILL');
        await n.process.closed.catch(() => undefined);
      }
    });
    const nats = await startNats();
    t.after(() => nats.stop());
    const dir = tempDir(t, 'bulwark-failover-');
    const adminKey = newAdminKey();
    const env = {
      BULWARK_MASTER_KEY: randomBytes(32).toString('hex'), BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey, BULWARK_CLUSTER_LEASE_MS: String(LEASE_MS),
      BULWARK_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '100000', BULWARK_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: '100000',
    };
    const node = (id: string) => startServer(t, join(dir, id), { env, args: ['--store', store, '--bus', nats.url, '--node-id', id] });
    // The first node migrates the empty database; the others start beside it.
    const first = await node('node-1');
    nodes.push(first, ...await Promise.all([node('node-2'), node('node-3')]));
    const haproxy = await startHaproxy(nodes.map((n, i) => ({ name: `node-${i + 1}`, port: n.mqttPort ?? 0, healthPort: Number(new URL(n.url).port) })));
    t.after(() => haproxy.stop());

    const token = await accessToken(first.url, adminKey);
    const api = async (url: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: await res.json() as any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
    };
    assert.equal((await api(first.url, 'POST', '/api/v1/schemas', SCHEMA)).status, 201);

    const agents: Agent[] = [];
    const sent = new Map<string, string[]>();
    for (let i = 0; i < AGENTS; i += 10) {
      agents.push(...await Promise.all(Array.from({ length: Math.min(10, AGENTS - i) }, async (_, k) => {
        const id = `fo-${i + k}`;
        assert.equal((await api(first.url, 'POST', '/api/v1/devices', { id })).status, 201);
        const claim = await api(first.url, 'POST', `/api/v1/devices/${id}/claim-tokens`, {});
        sent.set(id, []);
        // The agents' default reconnect backoff: the target is measured with it.
        return startAgent({
          deviceId: id, dataDir: agentDir(t, id), mqtt: { url: `mqtts://127.0.0.1:${haproxy.port}`, keepaliveS: 5, connectTimeoutMs: 3_000 },
          identity: { claimToken: claim.body.token, enrollUrl: nodes[(i + k) % 3]?.url ?? first.url }, queue: { ackTimeoutMs: 3_000 }, logs: { level: 'error' },
        });
      })));
    }
    await until('every agent online', () => agents.every((a) => a.status().state === 'online'), 120_000);
    const send = async (a: Agent, n: number) => {
      const { id } = await a.send('env-sensor@2', { n });
      sent.get(a.status().deviceId)?.push(id);
    };
    for (let n = 0; n < READINGS_BEFORE_KILL; n += 1) await Promise.all(agents.map((a) => send(a, n)));
    await until('the first readings acknowledged', () => agents.every((a) => a.status().queue.depth === 0), 60_000);

    // The node holding the most sessions dies; the agents keep sending through the outage.
    const listed = (await api(first.url, 'GET', '/api/v1/cluster')).body.nodes as { id: string; sessions: number }[];
    const victimId = [...listed].sort((x, y) => y.sessions - x.sessions)[0]?.id ?? 'node-1';
    const victim = nodes[Number(victimId.split('-')[1]) - 1] as StartedServer;
    const survivor = nodes.find((n) => n !== victim) as StartedServer;
    const reconnected = new Map<string, number>();
    const killedAt = performance.now();
    for (const a of agents) a.once('connected', () => reconnected.set(a.status().deviceId, performance.now() - killedAt));
    victim.process.child.kill('SIGKILL');
    await victim.process.closed.catch(() => undefined);
    for (let n = READINGS_BEFORE_KILL; n < READINGS_BEFORE_KILL * 2; n += 1) await Promise.all(agents.map((a) => send(a, n)));

    const victimSessions = listed.find((x) => x.id === victimId)?.sessions ?? 0;
    await until('the victim\'s devices back online', () => reconnected.size >= victimSessions, 120_000);
    await until('every reading acknowledged', () => agents.every((a) => a.status().state === 'online' && a.status().queue.depth === 0), 120_000);
    const times = [...reconnected.values()].sort((x, y) => x - y);
    const p95 = times[Math.floor(0.95 * (times.length - 1))] ?? 0;
    console.log(`failover: ${victimId} held ${victimSessions} of ${AGENTS} sessions; ${times.length} agents reconnected, p50 ${((times[Math.floor(0.5 * (times.length - 1))] ?? 0) / 1000).toFixed(1)} s, p95 ${(p95 / 1000).toFixed(1)} s, last ${((times.at(-1) ?? 0) / 1000).toFixed(1)} s`);

    // Every reading an agent had acknowledged is stored, each once.
    let stored = 0;
    for (const [id, ids] of sent) {
      const rows = (await api(survivor.url, 'GET', `/api/v1/devices/${id}/telemetry?limit=10000`)).body as { msgId: string }[];
      const got = rows.map((r) => r.msgId).sort();
      assert.deepEqual(got, [...ids].sort(), `${id}: stored exactly what it sent, once each`);
      stored += got.length;
    }
    console.log(`failover: ${stored} readings stored, ${stored} sent, 0 lost, 0 twice`);

    // Once the victim's lease is over the survivors clean what it held, and leave alone the sessions that moved.
    await until('the victim gone from the cluster', async () => {
      const now = (await api(survivor.url, 'GET', '/api/v1/cluster')).body.nodes as { id: string; alive: boolean }[];
      return !now.some((x) => x.id === victimId && x.alive);
    }, 30_000);
    await until('every device online through a survivor', async () => {
      const states = await Promise.all(agents.map(async (a) => (await api(survivor.url, 'GET', `/api/v1/devices/${a.status().deviceId}`)).body.connectivity?.online === true));
      return states.every(Boolean);
    }, 60_000);
    assert.equal(reconnected.size, victimSessions, 'exactly the victim\'s devices reconnected; the other nodes\' sessions were untouched');
    assert.ok(victimSessions > 0, 'the victim held sessions');
  });
});

async function accessToken(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** A database of its own for the test, dropped when it ends, after `before` (which stops what uses it). */
async function freshDatabase(t: TestContext, url: string, before: () => Promise<void>): Promise<string> {
  const name = `bw_failover_${randomBytes(6).toString('hex')}`;
  await withPgConnection(url, (c) => c.query(`CREATE DATABASE ${name}`));
  t.after(async () => {
    await before();
    await withPgConnection(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}
