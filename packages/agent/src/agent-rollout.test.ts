import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type SimFleet, sha256, simFleet, stagedRollout, tempDir } from '@bulwark/server/testing';
import { type AgentFleet, agentFleet } from './ota/testing-fleet.js';

describe('a staged rollout to 1,000 agents running the real update code', () => {
  it('stops itself when 8 % of wave 2 fails: later waves are never notified, updated devices stay updated, the rest stay on the old version', { timeout: 300_000 }, async (t) => {
    const image = randomBytes(64 * 1024);
    // The devices need the fleet's root key set, the fleet needs the devices' answer: tie the knot through a reference.
    const ref: { agents?: AgentFleet } = {};
    const fleet: SimFleet = await simFleet(t, 1000, { image, answer: (f, id, job) => ref.agents!.answer(f, id, job) });
    const agents = (ref.agents = agentFleet(tempDir(t, 'bulwark-agents-'), fleet.kit.rootFile, image, sha256(image)));
    const { rollouts, registry } = fleet;
    const { created, bad } = await stagedRollout(fleet);
    assert.deepEqual(
      created.waves.map((w) => w.total),
      [10, 90, 400, 500],
    );
    // 8 % of wave 2: half get an image corrupted on the way (refused, retried once, refused again), half boot it and fail their health check (reverted).
    assert.equal(bad.length, 7);
    bad.forEach((id, i) => (i % 2 === 0 ? agents.corrupt : agents.failHealth).add(id));

    const started = Date.now();
    await fleet.settle();
    const view = await rollouts.view(created.id);
    console.log(`rollout to 1,000 agents: ${view.state} after ${Date.now() - started} ms; ${view.totals.committed} committed, ${view.totals.failed} failed; ${agents.server.bytesServed} image bytes served; reason: ${view.reason ?? ''}`);
    assert.equal(view.state, 'aborted');
    assert.match(view.reason ?? '', /^wave 2: failure gate: \d+ of \d+ finished devices failed/);

    const records = await rollouts.devices(created.id, { limit: 1000 });
    const later = new Set(records.filter((d) => d.wave >= 2).map((d) => d.deviceId));
    assert.equal(later.size, 900);
    assert.deepEqual(
      [...fleet.notified.keys()].filter((id) => later.has(id)),
      [],
      'no device of waves 3 and 4 ever got a job',
    );
    for (const id of agents.corrupt) {
      assert.equal(fleet.notified.get(id)?.length, 2, 'one retry of a refused image, then it counts');
      assert.equal(agents.updaters.get(id)?.state.job?.reason, 'image_hash_mismatch');
    }
    for (const id of agents.failHealth) assert.equal(records.find((d) => d.deviceId === id)?.reason, 'health_check_failed');

    const states = new Map(records.map((d) => [d.deviceId, d.state]));
    let updated = 0;
    for (const d of await registry.list({ limit: 1000 })) {
      const committed = states.get(d.id) === 'committed';
      if (committed) updated += 1;
      const running: { version: string; trial: boolean } | undefined = agents.updaters.get(d.id)?.running();
      assert.equal(running?.version ?? '1.0.0', committed ? '2.0.0' : '1.0.0', `${d.id} runs`);
      assert.equal(running?.trial ?? false, false, `${d.id} has no trial pending`);
      assert.deepEqual([d.firmwareVersion, d.securityVersion], committed ? ['2.0.0', 5] : ['1.0.0', 4], `${d.id} in the registry`);
      if (committed) assert.equal(agents.updaters.get(d.id)?.state.minSecurityVersion, 5);
    }
    assert.ok(updated >= 10 && updated <= 10 + 90 - bad.length, `${updated} devices updated`);
    assert.equal(view.totals.committed, updated);

    await rollouts.tick();
    assert.equal(await fleet.drain(), 0, 'an aborted rollout sends nothing more');
  });
});
