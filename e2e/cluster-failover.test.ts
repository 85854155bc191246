import assert from 'node:assert/strict';
import { it } from 'node:test';
import { until } from '../packages/agent/src/testing/until.js';
import { pgTestUrl } from '../packages/server/src/testing/pg.js';
import { describeWith } from '../packages/server/src/testing/services.js';
import { quantile, startCluster } from './support/cluster.js';

/**
 * Failover and rolling restart, CI-sized (BULWARK_TEST_FAILOVER_AGENTS, default 30;
 * `npm run test:long` runs 200): three `bulwark start` nodes on one PostgreSQL database
 * behind HAProxy, real agents sending QoS 1 through HAProxy with their default backoff. The
 * failover run has a 3-server NATS cluster and Redis counters, and loses one of each kind.
 */
const AGENTS = Number(process.env.BULWARK_TEST_FAILOVER_AGENTS ?? 30);
const ROUNDS = 5;

describeWith('cluster failover', ['nats-server', 'haproxy'], () => {
  it(`kill -9 of a NATS server, Redis stopped and restarted, kill -9 of a Bulwark node: no acknowledged reading lost or stored twice, commands sent meanwhile delivered (${AGENTS} agents)`, { timeout: 900_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const c = await startCluster(t, pgUrl, { nodes: 3, agents: AGENTS, leaseMs: 3_000, natsServers: 3, redis: true });
    const first = c.nodes[0]?.server.url as string;
    let round = 0;
    const rounds = async () => {
      for (let n = 0; n < ROUNDS; n += 1) await c.sendRound(round++);
    };
    await rounds();
    await c.settled();

    // 1. The NATS server most nodes use dies (the buckets keep three copies); the agents keep sending.
    const used = ((await c.api(first, 'GET', '/api/v1/cluster')).body.nodes as { natsServer?: string }[]).map((n) => n.natsServer);
    const natsVictim = [...c.nats].sort((x, y) => used.filter((u) => u?.endsWith(`:${y.port}`)).length - used.filter((u) => u?.endsWith(`:${x.port}`)).length)[0];
    assert.ok(natsVictim);
    const natsKilledAt = performance.now();
    await natsVictim.kill();
    await rounds();
    await c.settled();
    console.log(
      `failover: NATS server :${natsVictim.port} killed (${used.filter((u) => u?.endsWith(`:${natsVictim.port}`)).length} of 3 nodes on it); every agent online with an empty queue after ${((performance.now() - natsKilledAt) / 1000).toFixed(1)} s; ${await c.storedExactlyOnce(first)} readings stored once each`,
    );

    // 2. Redis goes away: limits count on each node (counted), nothing else changes; then it comes back empty.
    const fallbacks = async () => (await Promise.all(c.nodes.map((n) => c.metric(n.server.url, 'bulwark_counters_fallback_total{operation="increment"}')))).reduce((a, b) => a + b, 0);
    const before = await fallbacks();
    await c.redis?.stop();
    for (const n of c.nodes) assert.equal((await c.api(n.server.url, 'GET', '/api/v1/devices?limit=1')).status, 200, 'the API answers without Redis');
    await rounds();
    await c.settled();
    const during = await fallbacks();
    assert.ok(during > before, `rate limits fell back to per-node counters (${during - before} increments counted)`);
    await c.restartRedis();
    await until(
      'every node counting in Redis again',
      async () => {
        const was = await fallbacks();
        for (const n of c.nodes) await c.api(n.server.url, 'GET', '/api/v1/devices?limit=1');
        return (await fallbacks()) === was;
      },
      30_000,
    );
    await rounds();
    await c.settled();
    console.log(`failover: Redis stopped: ${during - before} counter increments done on the nodes meanwhile; restarted: back in Redis; ${await c.storedExactlyOnce(first)} readings stored once each`);

    // 3. The Bulwark node holding the most sessions dies; the agents keep sending through the outage.
    // (Read until it lists the nodes with their sessions: right after a NATS server died, a listing can come back short.)
    let listed: { id: string; sessions: number }[] = [];
    await until(
      'the cluster listing its nodes',
      async () => {
        const view = await c.api(first, 'GET', '/api/v1/cluster');
        listed = view.status === 200 ? view.body.nodes : [];
        return listed.length === c.nodes.length && listed.some((n) => n.sessions > 0);
      },
      30_000,
    ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(listed)}`));
    const victimInfo = [...listed].sort((x, y) => y.sessions - x.sessions)[0];
    const victim = c.nodes.find((n) => n.id === victimInfo?.id);
    const survivor = c.nodes.find((n) => n !== victim)?.server.url as string;
    assert.ok(victim && victimInfo && victimInfo.sessions > 0, 'the victim holds sessions');
    const reconnected = new Map<string, number>();
    const killedAt = performance.now();
    for (const a of c.agents) a.once('connected', () => reconnected.set(a.status().deviceId, performance.now() - killedAt));
    // What each agent went through from here, for the failure message of the last wait.
    const history = new Map<string, string[]>();
    for (const a of c.agents) {
      const note = (what: string) => history.set(a.status().deviceId, [...(history.get(a.status().deviceId) ?? []), `${((performance.now() - killedAt) / 1000).toFixed(1)}s ${what}`].slice(-12));
      a.on('state', (state) => note(state));
      a.on('refused', (r) => note(`refused ${r.reason}`));
    }
    victim.server.process.child.kill('SIGKILL');
    await victim.server.process.closed.catch(() => undefined);
    // A command to every device during the failover: the ones on the dead node get it once they are back.
    const commands = await Promise.all(
      c.agents.map(async (a) => {
        const issued = await c.api(survivor, 'POST', `/api/v1/devices/${a.status().deviceId}/commands/failover-check`, { ttlS: 300 });
        assert.equal(issued.status, 201, JSON.stringify(issued.body));
        return { deviceId: a.status().deviceId, id: issued.body.id as string };
      }),
    );
    await rounds();

    await until("the victim's devices back online", () => reconnected.size >= victimInfo.sessions, 120_000);
    await c.settled();
    const times = [...reconnected.values()];
    console.log(
      `failover: ${victimInfo.id} held ${victimInfo.sessions} of ${AGENTS} sessions; ${times.length} agents reconnected, p50 ${(quantile(times, 0.5) / 1000).toFixed(1)} s, p95 ${(quantile(times, 0.95) / 1000).toFixed(1)} s, last ${(quantile(times, 1) / 1000).toFixed(1)} s`,
    );
    assert.equal(reconnected.size, victimInfo.sessions, "exactly the victim's devices reconnected; the other nodes' sessions were untouched");

    // Each command reached its device: the agent answered it (it has no handler for it, so it refuses it by name).
    let unanswered: unknown[] = [];
    await until(
      'every command answered by its device',
      async () => {
        const states = await Promise.all(commands.map(async ({ deviceId, id }) => ({ deviceId, ...(await c.api(survivor, 'GET', `/api/v1/devices/${deviceId}/commands/${id}`)).body })));
        unanswered = states.filter((s) => s.status !== 'rejected').map((s) => ({ deviceId: s.deviceId, status: s.status, sendCount: s.sendCount, wasOnVictim: reconnected.has(s.deviceId) }));
        return unanswered.length === 0;
      },
      60_000,
    ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(unanswered.slice(0, 10))}`));

    const stored = await c.storedExactlyOnce(survivor);
    console.log(`failover: ${stored} readings sent and stored, 0 lost, 0 twice`);
    assert.equal(stored, AGENTS * round);

    // Once the victim's lease is over the survivors clean what it held, and leave alone the sessions that moved.
    await until(
      'the victim gone from the cluster',
      async () => {
        const now = (await c.api(survivor, 'GET', '/api/v1/cluster')).body.nodes as { id: string; alive: boolean }[];
        return !now.some((x) => x.id === victimInfo.id && x.alive);
      },
      30_000,
    );
    let offline: unknown[] = [];
    await until(
      'every device online through a survivor',
      async () => {
        const states = await Promise.all(c.agents.map(async (a) => ({ agent: a.status(), device: (await c.api(survivor, 'GET', `/api/v1/devices/${a.status().deviceId}`)).body })));
        offline = states
          .filter((s) => s.device.connectivity?.online !== true)
          .map((s) => ({ deviceId: s.agent.deviceId, agentState: s.agent.state, reconnects: s.agent.reconnects, attempts: s.agent.attempts, lastRefusal: s.agent.lastRefusal, connectivity: s.device.connectivity, history: history.get(s.agent.deviceId) }));
        return offline.length === 0;
      },
      60_000,
    ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(offline.slice(0, 5))}`));
  });

  it(`rolling restart of three nodes with drain under load: no reading lost or stored twice, at most 10 % of devices reconnecting in any second (${AGENTS} agents)`, { timeout: 900_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const c = await startCluster(t, pgUrl, { nodes: 3, agents: AGENTS, leaseMs: 15_000 });
    const reconnects: number[] = [];
    const startedAt = performance.now();
    for (const a of c.agents) a.on('connected', () => reconnects.push(performance.now() - startedAt));
    let sending = true;
    let round = 0;
    const load = (async () => {
      while (sending) {
        await c.sendRound(round++);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();

    // A node holds up to half the fleet after its neighbours drained into it: 10 s keeps that
    // under 5 % of the fleet a second on average. A small fleet gets 20 s: there one device is
    // already 3 %, and the agents' reconnect jitter can put three in one second.
    const spreadS = AGENTS < 100 ? 20 : 10;
    try {
      await rollThrough(spreadS);
    } finally {
      sending = false;
      await load;
    }
    await c.settled();

    const perSecond = new Map<number, number>();
    for (const ms of reconnects) perSecond.set(Math.floor(ms / 1000), (perSecond.get(Math.floor(ms / 1000)) ?? 0) + 1);
    const worst = Math.max(0, ...perSecond.values());
    const stored = await c.storedExactlyOnce(c.nodes[0]?.server.url as string);
    console.log(
      `rolling restart: reconnects per second: ${[...perSecond.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([sec, n]) => `${sec}s:${n}`)
        .join(' ')}`,
    );
    console.log(`rolling restart: ${reconnects.length} reconnects over ${c.nodes.length} drains, at most ${worst} in one second (${((worst / AGENTS) * 100).toFixed(0)} % of ${AGENTS} devices); ${stored} readings sent and stored, 0 lost, 0 twice`);
    assert.ok(worst <= Math.max(1, Math.ceil(AGENTS / 10)), `${worst} devices reconnected in one second`);

    /** Drains, stops and restarts every node in turn, each back in the load balancer before the next goes. */
    async function rollThrough(spreadS: number): Promise<void> {
      for (const node of c.nodes) {
        const other = c.nodes.find((n) => n !== node)?.server.url as string;
        console.log(`rolling restart: draining ${node.id} at ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
        const drained = await c.api(other, 'POST', `/api/v1/cluster/nodes/${node.id}/drain`, { spreadS });
        assert.equal(drained.status, 202, JSON.stringify(drained.body));
        await until(
          `${node.id} drained`,
          async () => {
            const n = ((await c.api(other, 'GET', '/api/v1/cluster')).body.nodes as { id: string; sessions: number; draining: boolean }[]).find((x) => x.id === node.id);
            return n?.draining === true && n.sessions === 0;
          },
          120_000,
        );
        node.server.process.child.kill('SIGTERM');
        await node.server.process.closed;
        node.server = await c.restartNode(node);
        // Back in the load balancer before the next node goes (HAProxy: rise 2 × inter 500 ms).
        await until(`${node.id} ready`, async () => (await fetch(`${node.server.url}/readyz`)).status === 200, 30_000);
        await new Promise((r) => setTimeout(r, 1_500));
        const spread = ((await c.api(other, 'GET', '/api/v1/cluster')).body.nodes as { id: string; sessions: number }[]).map((n) => `${n.id} ${n.sessions}`).join(', ');
        console.log(`rolling restart: ${node.id} drained and restarted; sessions now ${spread}; ${c.agents.filter((a) => a.status().state === 'online').length}/${AGENTS} agents online`);
      }
    }
  });
});
