import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simFleet } from '../testing/ota-fleet.js';

describe('a staged rollout to 1,000 simulated devices', () => {
  it('stops itself when 8 % of wave 2 fails: later waves are never notified, updated devices stay updated, the rest stay on the old version', { timeout: 120_000 }, async (t) => {
    const fleet = await simFleet(t, 1000);
    const { rollouts, registry } = fleet;
    const created = await rollouts.create({
      name: 'gw 2.0.0', artifactId: fleet.artifact.id, target: { tag: 'fleet' }, maxRetries: 1,
      strategy: { waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }] },
      gates: { minDevices: 20, maxFailurePercent: 5, onFailure: 'abort' },
    }, 'usr_ops');
    assert.deepEqual(created.waves.map((w) => w.total), [10, 90, 400, 500]);

    const wave2 = (await rollouts.devices(created.id, { wave: 1, limit: 1000 })).map((d) => d.deviceId);
    const bad = wave2.filter((_, i) => i % 12 === 5).slice(0, Math.round(wave2.length * 0.08));
    for (const id of bad) fleet.failing.set(id, { state: 'failed', reason: 'flash_write_error' });
    assert.equal(bad.length, 7);

    await fleet.settle();
    const view = await rollouts.view(created.id);
    assert.equal(view.state, 'aborted');
    assert.match(view.reason ?? '', /^wave 2: failure gate: \d+ of \d+ finished devices failed/);
    assert.equal(view.history.at(-1)?.actor, 'system');

    const later = new Set((await rollouts.devices(created.id, { limit: 1000 })).filter((d) => d.wave >= 2).map((d) => d.deviceId));
    assert.equal(later.size, 900);
    assert.deepEqual([...fleet.notified.keys()].filter((id) => later.has(id)), [], 'no device of waves 3 and 4 ever got a job');
    for (const id of bad) assert.equal(fleet.notified.get(id)?.length, 2, 'one retry per failing device, then it counts');

    const states = new Map((await rollouts.devices(created.id, { limit: 1000 })).map((d) => [d.deviceId, d.state]));
    const devices = await registry.list({ limit: 1000 });
    let updated = 0;
    for (const d of devices) {
      const committed = states.get(d.id) === 'committed';
      if (committed) updated += 1;
      assert.equal(d.firmwareVersion, committed ? '2.0.0' : '1.0.0', d.id);
      assert.equal(d.securityVersion, committed ? 5 : 4, d.id);
    }
    assert.ok(updated >= 10 && updated <= 10 + 90 - bad.length, `${updated} devices updated`);
    assert.equal(view.totals.committed, updated);

    await rollouts.tick();
    assert.equal(await fleet.drain(), 0, 'an aborted rollout sends nothing more');
    await assert.rejects(rollouts.control(created.id, 'resume', 'try again', 'usr_ops'), /BULWARK_ERR_ROLLOUT_STATE|cannot resume/);
  });
});

describe('device statuses handled concurrently', () => {
  it('lose none: a status written while the previous one is still being stored is judged again on the stored state', async (t) => {
    const fleet = await simFleet(t, 1);
    fleet.silent.add('dev-0000');
    const created = await fleet.rollouts.create({
      name: 'one', artifactId: fleet.artifact.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' },
    }, 'usr_ops');
    await fleet.settle();
    const [job] = fleet.notified.get('dev-0000') ?? [];
    assert.ok(job);
    const at = fleet.clock.now();
    const send = (state: 'queued' | 'downloading' | 'verifying' | 'installing' | 'rebooting' | 'verifying-health' | 'committed') => fleet.rollouts.onStatus('dev-0000', { jobId: job.jobId, state, ts: at, ...(state === 'committed' ? { firmware: { version: '2.0.0', securityVersion: 5 } } : {}) });
    const outcomes = await Promise.all((['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed'] as const).map(send));
    assert.equal(outcomes.at(-1), 'committed', outcomes.join(', '));
    assert.ok(!outcomes.includes('conflict'), outcomes.join(', '));
    const [dev] = await fleet.rollouts.devices(created.id, { limit: 1 });
    assert.equal(dev?.state, 'committed');
    assert.equal((await fleet.registry.get('dev-0000')).firmwareVersion, '2.0.0');
  });
});
