import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Agent } from '../../packages/agent/src/agent.js';
import type { Identity } from '../../packages/agent/src/identity.js';
import { AGENT_DEFAULTS } from '../../packages/agent/src/config.js';
import { SCHEMA } from '../../packages/agent/src/testing/platform.js';
import { until } from '../../packages/agent/src/testing/until.js';
import { newAdminKey } from '../../packages/server/src/testing/harness.js';
import { withPgConnection } from '../../packages/server/src/testing/pg.js';
import { type NatsCluster, type RunningEngine, startHaproxy, startNats, startNatsCluster, startRedis } from '../../packages/server/src/testing/services.js';
import { Session } from '../../apps/bulwark/src/client.js';
import { PlatformApi, VirtualFleet, checkScenario, fleetChoices, onboardFleet, planDevice } from '../../apps/bulwark/src/simulate/index.js';
import { tempDir } from './cli.js';
import { type StartedServer, startServer } from './server.js';

/** Test-only: a cluster of `bulwark start` processes behind HAProxy, with real agents sending through it. */

export interface ClusterNodeProcess {
  readonly id: string;
  server: StartedServer;
}

export interface TestCluster {
  readonly nodes: ClusterNodeProcess[];
  readonly haproxy: RunningEngine;
  /** An admin access token for every node's API. */
  readonly token: string;
  /** The NATS servers (one, or a cluster whose buckets keep three copies). */
  readonly nats: readonly RunningEngine[];
  /** Redis for the shared counters, when asked for; `restartRedis` starts it again on its port. */
  redis: RunningEngine | undefined;
  restartRedis(): Promise<void>;
  /** The value of one sample of a node's /metrics, e.g. `bulwark_counters_fallback_total{operation="increment"}` (0 when absent). */
  metric(url: string, sample: string): Promise<number>;
  readonly agents: Agent[];
  /** Message ids each device's agent has been given to send, by device id. */
  readonly sent: Map<string, string[]>;
  api(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
  /** Starts node `id` again: same data directory, id and ports (the load balancer knows them). */
  restartNode(node: ClusterNodeProcess): Promise<StartedServer>;
  /** Every agent sends one reading (waits until each has queued it, not until it is acknowledged). */
  sendRound(n: number): Promise<void>;
  /** Waits until every agent is online with nothing left to send. */
  settled(timeoutMs?: number): Promise<void>;
  /** Checks that every device stored exactly what its agent sent, once each; returns the count. */
  storedExactlyOnce(via: string): Promise<number>;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly agents: number;
  readonly leaseMs: number;
  /** NATS servers: 1 (the default), or 3 in a JetStream cluster with `cluster.replicas` 3. */
  readonly natsServers?: 1 | 3;
  /** Shared counters in a Redis of the test's own. */
  readonly redis?: boolean;
  /** More environment for every node (BULWARK_* settings). */
  readonly env?: Readonly<Record<string, string>>;
}

export async function startCluster(t: TestContext, pgUrl: string, options: ClusterOptions): Promise<TestCluster> {
  const nodes: ClusterNodeProcess[] = [];
  // Registered first, so it runs first: the nodes die before their database is dropped.
  const store = await freshDatabase(t, pgUrl, async () => {
    for (const { server } of nodes) {
      if (server.process.running) server.process.child.kill('SIGKILL');
      await server.process.closed.catch(() => undefined);
    }
  });
  const nats: NatsCluster | RunningEngine = options.natsServers === 3 ? await startNatsCluster(3) : await startNats();
  t.after(() => nats.stop());
  let redis = options.redis ? await startRedis() : undefined;
  const redisPort = redis?.port;
  t.after(() => redis?.stop());
  const dir = tempDir(t, 'bulwark-cluster-');
  const adminKey = newAdminKey();
  const env = {
    BULWARK_MASTER_KEY: randomBytes(32).toString('hex'),
    BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey,
    BULWARK_CLUSTER_LEASE_MS: String(options.leaseMs),
    BULWARK_CLUSTER_DRAIN_LEAVE_MS: '1500',
    BULWARK_CLUSTER_REPLICAS: options.natsServers === 3 ? '3' : '1',
    BULWARK_COMMANDS_PER_PRINCIPAL_PER_MINUTE: '10000',
    BULWARK_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '100000',
    BULWARK_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: '100000',
    ...options.env,
  };
  const startNode = (id: string, ports: readonly string[] = []) => startServer(t, join(dir, id), { env, args: ['--store', store, '--bus', nats.url, '--node-id', id, ...(redis ? ['--counters', redis.url] : []), ...ports] });
  const ids = Array.from({ length: options.nodes }, (_, i) => `node-${i + 1}`);
  // The first node migrates the empty database; the others start beside it.
  const first = await startNode(ids[0] as string);
  nodes.push({ id: ids[0] as string, server: first });
  for (const [i, server] of (await Promise.all(ids.slice(1).map((id) => startNode(id)))).entries()) nodes.push({ id: ids[i + 1] as string, server });
  const haproxy = await startHaproxy(nodes.map(({ id, server }) => ({ name: id, port: server.mqttPort ?? 0, healthPort: Number(new URL(server.url).port) })));
  t.after(() => haproxy.stop());

  const token = await accessToken(first.url, adminKey);
  const api: TestCluster['api'] = async (url, method, path, body) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: await res.json() };
  };
  const registered = await api(first.url, 'POST', '/api/v1/schemas', SCHEMA);
  if (registered.status !== 201) throw new Error(JSON.stringify(registered.body));

  // The devices are the simulator's (`bulwark simulate`): onboarded by batch with their own
  // certificates, each running the real agent, all in this process, reaching the nodes through
  // HAProxy. The agents keep their own reconnect backoff: the targets are measured with it.
  const scenario = checkScenario({ name: 'cluster', devices: Math.max(1, options.agents), idPrefix: 'dev-' });
  const runId = Date.now().toString(36);
  const identities = options.agents === 0 ? new Map<string, Identity>() : await onboardFleet(new PlatformApi(new Session(first.url, adminKey, undefined)), scenario, runId, () => undefined);
  const choices = fleetChoices(scenario);
  const fleet = new VirtualFleet(
    [...identities.values()].map((identity, i) => planDevice(scenario, runId, i, identity, choices)),
    {
      dir: tempDir(t, 'bulwark-cluster-devices-'),
      seed: scenario.seed,
      servername: 'localhost',
      commandNames: [],
      crashEveryMs: scenario.crashLoop.everyMs,
      mqttUrl: () => `mqtts://127.0.0.1:${haproxy.port}`,
      agent: { mqtt: { keepaliveS: 5, connectTimeoutMs: 3_000 }, queue: { ackTimeoutMs: 3_000 }, reconnect: AGENT_DEFAULTS.reconnect },
    },
  );
  t.after(() => fleet.close());
  fleet.start();
  const agents = fleet.devices.map((d) => d.agent as Agent);
  const sent = new Map<string, string[]>(fleet.devices.map((d) => [d.id, []]));
  await until('every agent online', () => agents.every((a) => a.status().state === 'online'), 120_000);

  return {
    nodes,
    haproxy,
    agents,
    sent,
    api,
    token,
    nats: 'servers' in nats ? nats.servers : [nats],
    get redis() {
      return redis;
    },
    async restartRedis() {
      if (redisPort === undefined) throw new Error('this cluster has no Redis');
      await redis?.stop();
      redis = await startRedis(redisPort);
    },
    async metric(url, sample) {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      return line === undefined ? 0 : Number(line.slice(sample.length + 1));
    },
    restartNode: (node) => startNode(node.id, ['--http-port', new URL(node.server.url).port, '--mqtt-port', String(node.server.mqttPort)]),
    async sendRound(n) {
      await Promise.all(
        agents.map(async (a) => {
          const { id } = await a.send('env-sensor@2', { n });
          sent.get(a.status().deviceId)?.push(id);
        }),
      );
    },
    async settled(timeoutMs = 120_000) {
      const stuck = () => agents.map((a) => a.status()).filter((s) => s.state !== 'online' || s.queue.depth > 0);
      try {
        await until('every agent online with an empty queue', () => stuck().length === 0, timeoutMs);
      } catch (err) {
        throw new Error(
          `${(err as Error).message}: ${JSON.stringify(
            stuck()
              .slice(0, 5)
              .map((s) => ({ id: s.deviceId, state: s.state, depth: s.queue.depth, inflight: s.queue.inflight, lastRefusal: s.lastRefusal })),
          )}`,
        );
      }
    },
    async storedExactlyOnce(via) {
      // Acknowledged means in the telemetry stream: the store writers may still be catching up (bounded wait).
      const check = async () => {
        let stored = 0;
        for (const [id, ids] of sent) {
          const rows = (await api(via, 'GET', `/api/v1/devices/${id}/telemetry?limit=10000`)).body as { msgId: string }[];
          const got = rows.map((r) => r.msgId).sort();
          const want = [...ids].sort();
          if (got.length !== new Set(got).size) throw new Error(`${id}: a reading stored twice`);
          if (JSON.stringify(got) !== JSON.stringify(want)) return `${id}: stored ${got.length} readings (${new Set(got).size} distinct) for ${want.length} sent`;
          stored += got.length;
        }
        return stored;
      };
      const deadline = Date.now() + 60_000;
      for (;;) {
        const result = await check();
        if (typeof result === 'number') return result;
        if (Date.now() > deadline) throw new Error(result);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}

async function accessToken(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** A database of its own for the test, dropped when it ends, after `before` (which stops what uses it). */
async function freshDatabase(t: TestContext, url: string, before: () => Promise<void>): Promise<string> {
  const name = `bw_cluster_${randomBytes(6).toString('hex')}`;
  await withPgConnection(url, (c) => c.query(`CREATE DATABASE ${name}`));
  t.after(async () => {
    await before();
    await withPgConnection(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

/** The q-quantile of `values` (sorted here). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))] ?? 0;
}
