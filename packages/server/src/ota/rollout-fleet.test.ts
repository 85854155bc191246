import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { simFleet, stagedRollout } from '../testing/ota-fleet.js';

describe('a staged rollout to 1,000 simulated devices', () => {
  it('stops itself when 8 % of wave 2 fails: later waves are never notified, updated devices stay updated, the rest stay on the old version', { timeout: 120_000 }, async (t) => {
    const fleet = await simFleet(t, 1000);
    const { rollouts, registry } = fleet;
    const { created, bad } = await stagedRollout(fleet);
    assert.deepEqual(
      created.waves.map((w) => w.total),
      [10, 90, 400, 500],
    );
    for (const id of bad) fleet.failing.set(id, { state: 'failed', reason: 'flash_write_error' });
    assert.equal(bad.length, 7);

    await fleet.settle();
    const view = await rollouts.view(created.id);
    assert.equal(view.state, 'aborted');
    assert.match(view.reason ?? '', /^wave 2: failure gate: \d+ of \d+ finished devices failed/);
    assert.equal(view.history.at(-1)?.actor, 'system');

    const later = new Set((await rollouts.devices(created.id, { limit: 1000 })).filter((d) => d.wave >= 2).map((d) => d.deviceId));
    assert.equal(later.size, 900);
    assert.deepEqual(
      [...fleet.notified.keys()].filter((id) => later.has(id)),
      [],
      'no device of waves 3 and 4 ever got a job',
    );
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
    const created = await fleet.rollouts.create(
      {
        name: 'one',
        artifactId: fleet.artifact.id,
        target: { tag: 'fleet' },
        strategy: { waves: [{ percent: 100 }] },
        gates: { minDevices: 1, onFailure: 'pause' },
      },
      'usr_ops',
    );
    await fleet.settle();
    const [job] = fleet.notified.get('dev-0000') ?? [];
    assert.ok(job);
    const at = fleet.clock.now();
    const send = (state: 'queued' | 'downloading' | 'verifying' | 'installing' | 'rebooting' | 'verifying-health' | 'committed') =>
      fleet.rollouts.onStatus('dev-0000', { jobId: job.jobId, state, ts: at, ...(state === 'committed' ? { firmware: { version: '2.0.0', securityVersion: 5 } } : {}) });
    const outcomes = await Promise.all((['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed'] as const).map(send));
    assert.equal(outcomes.at(-1), 'committed', outcomes.join(', '));
    assert.ok(!outcomes.includes('conflict'), outcomes.join(', '));
    const [dev] = await fleet.rollouts.devices(created.id, { limit: 1 });
    assert.equal(dev?.state, 'committed');
    assert.equal((await fleet.registry.get('dev-0000')).firmwareVersion, '2.0.0');
  });
});

describe('aborting a rollout', () => {
  it('tells devices that have not begun installing to stop, now or when they come back; devices already installing are left to finish', async (t) => {
    const fleet = await simFleet(t, 4);
    for (const id of ['dev-0000', 'dev-0001', 'dev-0002', 'dev-0003']) fleet.silent.add(id);
    const created = await fleet.rollouts.create(
      {
        name: 'four',
        artifactId: fleet.artifact.id,
        target: { tag: 'fleet' },
        strategy: { waves: [{ percent: 100 }] },
        gates: { minDevices: 1, onFailure: 'pause' },
      },
      'usr_ops',
    );
    await fleet.settle();
    const job = (id: string) => fleet.notified.get(id)?.[0]?.jobId ?? '';
    const at = fleet.clock.now();
    await fleet.rollouts.onStatus('dev-0001', { jobId: job('dev-0001'), state: 'downloading', ts: at });
    await fleet.rollouts.onStatus('dev-0002', { jobId: job('dev-0002'), state: 'installing', ts: at });
    fleet.offline.add('dev-0003');

    await fleet.rollouts.control(created.id, 'abort', 'bad batch', 'usr_ops');
    const sent = (id: string) => fleet.cancels.get(id) ?? [];
    assert.deepEqual(sent('dev-0000'), [{ jobId: job('dev-0000'), cancel: true, reason: 'rollout aborted: bad batch' }], 'notified: cancelled');
    assert.deepEqual(sent('dev-0001'), [{ jobId: job('dev-0001'), cancel: true, reason: 'rollout aborted: bad batch' }], 'downloading: cancelled');
    assert.deepEqual(sent('dev-0002'), [], 'installing: left to finish');
    assert.deepEqual(sent('dev-0003'), [], 'offline: nothing sent yet');

    fleet.offline.delete('dev-0003');
    assert.equal(await fleet.rollouts.redeliver('dev-0003'), 1);
    assert.deepEqual(sent('dev-0003'), [{ jobId: job('dev-0003'), cancel: true, reason: 'rollout aborted: bad batch' }], 'the cancel waits for the device to come back');

    assert.equal(await fleet.rollouts.onStatus('dev-0000', { jobId: job('dev-0000'), state: 'failed', ts: at, reason: 'cancelled' }), 'failed', 'no retry after an abort');
    const states = Object.fromEntries((await fleet.rollouts.devices(created.id, { limit: 10 })).map((d) => [d.deviceId, [d.state, d.reason]]));
    assert.deepEqual(states['dev-0000'], ['failed', 'cancelled']);
  });
});

describe('two rollouts over the same device', () => {
  it("notify it one after the other: the second waits while the first one's job is live", async (t) => {
    const fleet = await simFleet(t, 1);
    fleet.silent.add('dev-0000');
    const gates = { minDevices: 1, onFailure: 'pause' as const };
    const first = await fleet.rollouts.create({ name: 'a', artifactId: fleet.artifact.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'usr_ops');
    const image = randomBytes(2048);
    const registered = await fleet.firmware.register(fleet.kit.release(image, { version: '2.1.0' }), 'usr_test');
    const other = await fleet.firmware.receiveImage(registered.id, Readable.from([image]));
    await fleet.rollouts.create({ name: 'b', artifactId: other.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'usr_ops');
    await fleet.settle();
    assert.deepEqual(
      fleet.notified.get('dev-0000')?.map((j) => j.artifactId),
      [fleet.artifact.id],
      "only the first rollout's job while it is live",
    );

    const [job] = fleet.notified.get('dev-0000') ?? [];
    await fleet.rollouts.onStatus('dev-0000', { jobId: job!.jobId, state: 'committed', ts: fleet.clock.now(), firmware: { version: '2.0.0', securityVersion: 5 } });
    await fleet.rollouts.tick();
    assert.deepEqual(
      fleet.notified.get('dev-0000')?.map((j) => j.artifactId),
      [fleet.artifact.id, other.id],
      'then the second',
    );
    assert.equal((await fleet.rollouts.view(first.id)).state, 'completed');
  });

  it('do not wait for a job of an aborted rollout that the device never answered', async (t) => {
    const fleet = await simFleet(t, 1);
    fleet.silent.add('dev-0000');
    const gates = { minDevices: 1, onFailure: 'pause' as const };
    const first = await fleet.rollouts.create({ name: 'a', artifactId: fleet.artifact.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'usr_ops');
    await fleet.settle();
    await fleet.rollouts.control(first.id, 'abort', 'wrong build', 'usr_ops');
    const image = randomBytes(2048);
    const registered = await fleet.firmware.register(fleet.kit.release(image, { version: '2.1.0' }), 'usr_test');
    const other = await fleet.firmware.receiveImage(registered.id, Readable.from([image]));
    await fleet.rollouts.create({ name: 'b', artifactId: other.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'usr_ops');
    assert.deepEqual(
      fleet.notified.get('dev-0000')?.map((j) => j.artifactId),
      [fleet.artifact.id, other.id],
      'the device never answered the cancel, yet the next rollout reaches it',
    );
  });
});
