import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { OtaJobMessage, OtaState } from '@bulwark/protocol';
import { until } from '../packages/agent/src/testing/until.js';
import { makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import { firmwareKit } from '../packages/server/src/testing/firmware.js';
import { pgTestUrl } from '../packages/server/src/testing/pg.js';
import { describeWith } from '../packages/server/src/testing/services.js';
import { tempDir } from './support/cli.js';
import { type TestCluster, startCluster } from './support/cluster.js';

/**
 * A staged rollout across the death of its leader: three `bulwark start` nodes behind
 * HAProxy, devices (MQTT clients that answer their jobs step by step) spread over them, and
 * kill -9 of the node that runs the rollout engine in the middle of the second wave. Sized
 * by BULWARK_TEST_ROLLOUT_DEVICES (default 30).
 */
const DEVICES = Number(process.env.BULWARK_TEST_ROLLOUT_DEVICES ?? 30);
const STEPS: readonly OtaState[] = ['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health'];

describeWith('cluster rollout failover', ['nats-server', 'haproxy'], () => {
  it(`a rollout continues on the new leader after kill -9 of the old one, and no device gets a second job (${DEVICES} devices)`, { timeout: 600_000 }, async (t) => {
    const pgUrl = pgTestUrl(t);
    if (pgUrl === undefined) return;
    const kit = firmwareKit(tempDir(t, 'bulwark-rollout-'));
    const c = await startCluster(t, pgUrl, {
      nodes: 3,
      agents: 0,
      leaseMs: 3_000,
      env: { BULWARK_OTA_ROOT_KEYS_FILE: kit.rootFile, BULWARK_OTA_TICK_INTERVAL_MS: '200' },
    });
    const first = c.nodes[0]?.server.url as string;
    const image = randomBytes(8_192);
    const artifactId = await upload(c, first, kit.release(image), image);

    const devices = await Promise.all(Array.from({ length: DEVICES }, (_, i) => simulatedDevice(c, first, `gw-${i}`)));
    t.after(() => {
      for (const d of devices) d.client.end(true);
    });
    await until('every device connected', () => devices.every((d) => d.client.connected), 60_000);

    const created = await c.api(first, 'POST', '/api/v1/rollouts', {
      name: 'gw 2.0.0',
      artifactId,
      target: { model: 'gw-1' },
      strategy: { waves: [{ percent: 20 }, { percent: 40 }, { percent: 40 }] },
      gates: { minDevices: 1, onFailure: 'pause' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const rolloutId = created.body.id as string;
    const rollout = async () => (await c.api(first, 'GET', `/api/v1/rollouts/${rolloutId}`)).body as { state: string; currentWave: number; totals: { committed: number } };

    // The node leading the rollout engine dies while the second wave is under way.
    await until('the second wave under way', async () => (await rollout()).currentWave >= 1, 120_000);
    const leaderOf = async (via: string) => ((await c.api(via, 'GET', '/api/v1/cluster')).body.nodes as { id: string; alive: boolean; leads: string[] }[]).find((n) => n.alive && n.leads.includes('rollouts'))?.id;
    const leader = await leaderOf(first);
    const victim = c.nodes.find((n) => n.id === leader);
    assert.ok(victim, `a node leads the rollouts (${String(leader)})`);
    const survivor = c.nodes.find((n) => n !== victim)?.server.url as string;
    const waveAtKill = (await rollout()).currentWave;
    const killedAt = Date.now();
    victim.server.process.child.kill('SIGKILL');
    await victim.server.process.closed.catch(() => undefined);

    type View = { state: string; totals: { committed: number }; history: { at: number; wave: number; state: string; reason: string }[] };
    const finished = async () => (await c.api(survivor, 'GET', `/api/v1/rollouts/${rolloutId}`)).body as View;
    let seen: View | undefined;
    await until('the rollout completed', async () => (seen = await finished()).state === 'completed', 180_000).catch((err: Error) =>
      assert.fail(`${err.message}: ${JSON.stringify(seen)}; devices: ${JSON.stringify(devices.map((d) => [d.id, d.client.connected, [...d.jobs], d.commits]))}`),
    );
    await until(
      'the rollout engine led by a survivor',
      async () => {
        const id = await leaderOf(survivor);
        return c.nodes.some((n) => n !== victim && n.id === id);
      },
      30_000,
    );
    const view = await finished();
    const afterKill = view.history.filter((h) => h.at > killedAt);
    console.log(
      `rollout failover: ${victim.id} led the rollout engine and was killed in wave ${waveAtKill + 1}; ${String(await leaderOf(survivor))} leads it now; after the kill: ${afterKill.map((h) => `${h.state} (${h.reason})`).join('; ')}; ${view.totals.committed} of ${DEVICES} devices committed`,
    );
    assert.ok(
      afterKill.some((h) => h.state === 'completed'),
      'the rollout was finished after its first leader died',
    );
    assert.equal(view.totals.committed, DEVICES);
    for (const d of devices) {
      assert.equal(d.jobs.size, 1, `${d.id} was given ${d.jobs.size} jobs (${[...d.jobs].join(', ')})`);
      assert.equal(d.commits, 1, `${d.id} committed ${d.commits} times`);
    }
  });
});

/** Uploads a signed release through one node; the image lands in PostgreSQL, where every node serves it from. */
async function upload(c: TestCluster, url: string, manifest: unknown, image: Buffer): Promise<string> {
  const created = await c.api(url, 'POST', '/api/v1/firmware', { manifest });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const put = await fetch(`${url}/api/v1/firmware/${created.body.id as string}/image`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(image),
  });
  assert.equal(put.status, 200, await put.text());
  return created.body.id as string;
}

interface SimulatedDevice {
  readonly id: string;
  readonly client: MqttClient;
  /** Distinct job ids the device was given. */
  readonly jobs: Set<string>;
  commits: number;
}

/**
 * A device enrolled through the API that connects through HAProxy (reconnecting when its node
 * dies) and walks each job it is given to `committed`, one status every 100 ms. The same job
 * id again (resent after a reconnect) gets its last status again, not a second install.
 */
async function simulatedDevice(c: TestCluster, url: string, id: string): Promise<SimulatedDevice> {
  const made = await c.api(url, 'POST', '/api/v1/devices', { id, model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const claim = await c.api(url, 'POST', `/api/v1/devices/${id}/claim-tokens`, {});
  const keys = await makeDeviceKeys(id);
  const enrolled = await fetch(`${url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: claim.body.token, csr: keys.csrPem }) });
  const identity = (await enrolled.json()) as { certificate: string; caChain: string };
  const client = mqtt.connect({
    host: '127.0.0.1',
    port: c.haproxy.port,
    protocol: 'mqtts',
    protocolVersion: 4,
    clientId: id,
    key: keys.keyPem,
    cert: identity.certificate,
    ca: identity.caChain,
    rejectUnauthorized: true,
    reconnectPeriod: 500,
    connectTimeout: 5_000,
  });
  const device: SimulatedDevice = { id, client, jobs: new Set(), commits: 0 };
  const last = new Map<string, OtaState>();
  const status = (jobId: string, state: OtaState) => {
    last.set(jobId, state);
    const firmware = state === 'committed' ? { firmware: { version: '2.0.0', securityVersion: 5 } } : {};
    client.publish(`devices/${id}/ota/status`, JSON.stringify({ jobId, state, ts: Date.now(), ...firmware }), { qos: 1 });
  };
  client.on('connect', () => void client.subscribe(`devices/${id}/ota/job`, { qos: 1 }));
  client.on('message', (_topic, payload) => {
    const m = JSON.parse(payload.toString()) as OtaJobMessage;
    if ('cancel' in m) return;
    const seen = last.get(m.jobId);
    if (seen !== undefined) {
      if (seen === 'committed') status(m.jobId, 'committed');
      return;
    }
    device.jobs.add(m.jobId);
    void (async () => {
      for (const step of STEPS) {
        status(m.jobId, step);
        await new Promise((r) => setTimeout(r, 100));
      }
      device.commits += 1;
      status(m.jobId, 'committed');
    })();
  });
  return device;
}
