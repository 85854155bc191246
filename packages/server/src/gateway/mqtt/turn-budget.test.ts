import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { enrollDevice } from '../../testing/devices.js';
import { tempDir } from '../../testing/harness.js';
import { metric, setup } from '../../testing/telemetry.js';
import { TurnBudget } from './turn-budget.js';

/** Messages per device in the flood: small in `npm test`, large in `npm run test:long`. */
const N = Number(process.env.BULWARK_TEST_FLOOD_MESSAGES ?? 600);
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('bounded work per event-loop turn', () => {
  it('runs at most perTurn tasks in one turn and the rest in order on later turns', async () => {
    const budget = new TurnBudget(3);
    const ran: number[] = [];
    for (let i = 0; i < 8; i += 1) budget.run(() => ran.push(i));
    assert.deepEqual(ran, [0, 1, 2]);
    assert.equal(budget.waiting, 5);
    await turn();
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
    budget.run(() => ran.push(8));
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5], 'a new task waits behind the queued ones');
    await turn();
    await turn();
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    await turn();
    budget.run(() => ran.push(9));
    assert.deepEqual(ran.at(-1), 9, 'a fresh turn has its whole budget');
  });

  it(`keeps /healthz answering while four devices flood ${N} QoS 1 messages each with mosquitto_pub`, async (t) => {
    // The probe asks every 10 ms, past the per-address API limit of a long run.
    const config = { mqtt: { publishRatePerSecond: 100_000, publishBurst: 1_000_000, publishesPerTurn: 32 }, rateLimit: { perAddressPerMinute: 1_000_000 } };
    const { s, admin } = await setup(t, { id: 'flood-0', config });
    const dir = tempDir(t);
    const ids = ['flood-1', 'flood-2', 'flood-3', 'flood-4'];
    const floods = await Promise.all(
      ids.map(async (id) => {
        const d = await enrollDevice(s, admin, id);
        for (const [name, pem] of [
          [`${id}.key`, d.keyPem],
          [`${id}.crt`, d.certPem],
          ['ca.pem', d.caPem],
        ] as const)
          writeFileSync(join(dir, name), pem);
        const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ id: `${id}-${i}`, seq: i, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 20 } })).join('\n');
        writeFileSync(join(dir, `${id}.lines`), `${lines}\n`);
        return id;
      }),
    );
    let flooding = true;
    const latencies: number[] = [];
    const probe = (async () => {
      while (flooding) {
        const t0 = performance.now();
        const r = await s.api('GET', '/healthz');
        latencies.push(performance.now() - t0);
        assert.equal(r.status, 200);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const t0 = performance.now();
    const exits = await Promise.all(
      floods.map(
        (id) =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(
              'mosquitto_pub',
              ['-h', '127.0.0.1', '-p', String(s.server.mqttPort), '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, `${id}.crt`), '--key', join(dir, `${id}.key`), '-i', id, '-t', `devices/${id}/telemetry`, '-q', '1', '-l'],
              { stdio: ['pipe', 'ignore', 'pipe'] },
            );
            t.after(() => child.kill());
            let stderr = '';
            child.stderr.on('data', (b: Buffer) => {
              stderr += b.toString();
            });
            child.on('close', (code) => resolve({ code, stderr }));
            child.stdin.end(linesOf(dir, id));
          }),
      ),
    );
    const floodS = (performance.now() - t0) / 1000;
    flooding = false;
    await probe;
    for (const e of exits) assert.equal(e.code, 0, e.stderr);
    for (const id of ids) assert.equal((await s.server.store.telemetry.query({ deviceId: id, limit: N + 10 })).length, N, `all of ${id} stored`);
    const worst = Math.max(...latencies);
    const deferred = await metric(s, /bulwark_mqtt_publishes_deferred_total (\d+)/);
    console.log(`flood of ${ids.length}×${N} in ${floodS.toFixed(2)} s (${((ids.length * N) / floodS).toFixed(0)} msg/s); /healthz ${latencies.length} probes, worst ${worst.toFixed(1)} ms; ${deferred} publishes deferred to a later turn`);
    assert.ok(latencies.length > 0);
    assert.ok(worst < 2000, `/healthz answered within a generous bound (${worst.toFixed(1)} ms)`);
    assert.ok(deferred > 0, 'the budget of 32 a turn was used');
  });
});

function linesOf(dir: string, id: string): Buffer {
  return readFileSync(join(dir, `${id}.lines`));
}
