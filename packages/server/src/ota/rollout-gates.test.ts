import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simFleet } from '../testing/ota-fleet.js';
import { failedGate, inWindow, planWaves } from './index.js';

const gates = { minDevices: 5, maxFailurePercent: 20, onFailure: 'pause' as const };

describe('rollout planning', () => {
  it('puts the canary set first, cuts cumulative percents and absolute counts, and spreads the rest by hash', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `d${i}`);
    const waves = planWaves('ro_1', ids, { canary: ['d7', 'd9', 'nope'], waves: [{ count: 5 }, { percent: 50 }, { percent: 100 }] });
    assert.deepEqual(
      waves.map((w) => w.length),
      [2, 5, 44, 49],
    );
    assert.deepEqual(waves[0], ['d7', 'd9']);
    assert.equal(new Set(waves.flat()).size, 100);
    assert.deepEqual(
      planWaves('ro_1', ids, { waves: [{ percent: 10 }] }).map((w) => w.length),
      [10, 90],
      'the rest joins the last wave',
    );
    assert.notDeepEqual(planWaves('ro_2', ids, { waves: [{ count: 5 }] })[0], waves[1], 'another rollout, another spread');
  });

  it('judges gates only after the minimum of finished devices, and health against the devices not updated', () => {
    const g = { minDevices: 10, maxFailurePercent: 10, minSuccessPercent: 95, maxCrashRatio: 2, maxReconnectRatio: 3, onFailure: 'pause' as const };
    const t = (total: number, committed: number, failed: number) => ({ total, committed, failed, finished: committed + failed });
    const healthy = { devices: 50, restartLoops: 0, meanCrashes: 0.2, meanReconnects: 1 };
    assert.equal(failedGate(g, t(100, 3, 3)), undefined, '6 finished: too early to judge');
    assert.match(failedGate(g, t(100, 8, 2)) ?? '', /failure gate: 2 of 10 finished devices failed \(20\.0 %\)/);
    assert.equal(failedGate(g, t(100, 50, 5)), undefined);
    assert.match(failedGate(g, t(20, 18, 2)) ?? '', /success gate: 90\.0 %/);
    assert.match(failedGate(g, t(100, 20, 0), { ...healthy, meanCrashes: 0.9 }, healthy) ?? '', /crash 0\.90 times/);
    assert.match(failedGate(g, t(100, 20, 0), { ...healthy, meanReconnects: 4 }, healthy) ?? '', /reconnect 4\.00 times/);
    assert.equal(failedGate(g, t(100, 20, 0), healthy, healthy), undefined);
    assert.match(failedGate({ ...g, maxFailures: 0 }, t(100, 1, 1)) ?? '', /1 devices failed, at most 0/, 'a count gate needs no minimum');
  });

  it('judges the silence gate once minDevices updated devices could have gone quiet, in points above the rest', () => {
    const g = { minDevices: 5, maxSilentExcessPercent: 20, onFailure: 'pause' as const };
    const t = { total: 100, committed: 20, failed: 0, finished: 20 };
    // No health reports at all (devices 0): silence is still judged, from connects, disconnects and commits.
    const s = (judged: number, silent: number) => ({ devices: 0, restartLoops: 0, meanCrashes: 0, meanReconnects: 0, silence: { judged, silent } });
    assert.equal(failedGate(g, t, s(4, 4), s(50, 0)), undefined, 'fewer judged than minDevices');
    assert.match(failedGate(g, t, s(10, 3), s(50, 0)) ?? '', /health gate: 30\.0 % of updated devices went silent \(nothing heard for 10 min after their update\) against 0\.0 % of the rest/);
    assert.equal(failedGate(g, t, s(10, 3), s(50, 10)), undefined, '30 % against a baseline of 20 %: 10 points');
    assert.match(failedGate({ ...g, silentAfterMs: 1_800_000 }, t, s(10, 10), s(0, 0)) ?? '', /for 30 min/);
    assert.equal(failedGate({ minDevices: 5, onFailure: 'pause' }, t, s(10, 10), s(50, 0)), undefined, 'without the gate');
  });

  it('knows a maintenance window, also one across midnight', () => {
    const at = (h: number, m = 0) => Date.UTC(2026, 0, 1, h, m);
    assert.equal(inWindow({ startMinute: 60, endMinute: 300 }, at(2)), true);
    assert.equal(inWindow({ startMinute: 60, endMinute: 300 }, at(5)), false);
    assert.equal(inWindow({ startMinute: 22 * 60, endMinute: 120 }, at(23, 30)), true);
    assert.equal(inWindow({ startMinute: 22 * 60, endMinute: 120 }, at(12)), false);
    assert.equal(inWindow(null, at(12)), true);
  });
});

describe('rollout gates and controls', () => {
  it('pauses when updated devices fall into restart loops while the rest do not, and a resumed wave is not judged again', async (t) => {
    const fleet = await simFleet(t, 40);
    const { rollouts, store, clock } = fleet;
    for (let i = 0; i < 40; i += 1) {
      const deviceId = `dev-${String(i).padStart(4, '0')}`;
      await store.health.insert({ deviceId, receivedAt: clock.now(), report: { ts: clock.now(), boot: 'a', uptimeS: 500, restartLoop: false, crashCount: 0 } }, 10);
    }
    const r = await rollouts.create({ name: 'h', artifactId: fleet.artifact.id, target: { model: 'gw-1' }, strategy: { waves: [{ count: 10 }, { percent: 100 }] }, gates: { ...gates, maxRestartLoopExcessPercent: 10 } }, 'usr_ops');
    const firstWave = new Set((await rollouts.devices(r.id, { wave: 0, limit: 100 })).map((d) => d.deviceId));
    // Half of the first wave comes back from the update in a restart loop.
    fleet.onCommit = async (deviceId) => {
      const loop = firstWave.has(deviceId) && Number(deviceId.slice(-1)) % 2 === 0;
      await store.health.insert({ deviceId, receivedAt: clock.now(), report: { ts: clock.now(), boot: 'b', uptimeS: 5, restartLoop: loop, crashCount: loop ? 9 : 0 } }, 10);
    };
    await fleet.drain();
    await rollouts.idle();
    assert.equal((await rollouts.devices(r.id, { states: ['committed'], limit: 100 })).length, 10);
    // The health gate held the rollout in wave 1: wave 2 never started.
    let view = await rollouts.view(r.id);
    assert.equal(view.state, 'paused');
    assert.equal(view.currentWave, 0);
    assert.match(view.reason ?? '', /health gate: \d+\.\d % of updated devices are in a restart loop against 0\.0 %/);
    assert.equal(await fleet.drain(), 0);

    view = await rollouts.control(r.id, 'resume', 'loops explained: watchdog misconfigured on the bench units', 'usr_ops');
    assert.equal(view.state, 'running');
    assert.equal(view.currentWave, 1, 'the operator accepted wave 1; wave 2 starts');
    await fleet.settle();
    view = await rollouts.view(r.id);
    assert.equal(view.state, 'completed');
    assert.equal(view.totals.committed, 40);
    assert.deepEqual(
      view.history.map((e) => [e.state, e.actor]),
      [
        ['running', 'usr_ops'],
        ['paused', 'system'],
        ['running', 'usr_ops'],
        ['running', 'system'],
        ['completed', 'system'],
      ],
    );
  });

  it('holds a finished wave for silentAfterMs, then pauses when more updated devices went silent than the rest', async (t) => {
    const fleet = await simFleet(t, 40);
    const { rollouts, store, clock } = fleet;
    const ids = Array.from({ length: 40 }, (_, i) => `dev-${String(i).padStart(4, '0')}`);
    const canary = ids.slice(0, 10);
    const quiet = new Set(['dev-0000', 'dev-0001', 'dev-0002', 'dev-0003', 'dev-0039']);
    const report = async (all = false) => {
      for (const deviceId of ids) if (all || !quiet.has(deviceId)) await store.health.insert({ deviceId, receivedAt: clock.now(), report: { ts: clock.now(), boot: 'a', uptimeS: 60 } }, 10);
    };
    // dev-0039 is off and has never been heard: it counts on neither side.
    fleet.offline.add('dev-0039');
    const r = await rollouts.create({ name: 's', artifactId: fleet.artifact.id, target: { model: 'gw-1' }, strategy: { canary, waves: [{ percent: 100 }] }, gates: { minDevices: 5, maxSilentExcessPercent: 20, onFailure: 'pause' } }, 'usr_ops');
    await report();
    // dev-0020 is not updated yet and goes quiet after this report: the baseline.
    quiet.add('dev-0020');
    await fleet.drain();
    await rollouts.idle();
    const at = async () => ((v) => [v.state, v.currentWave, v.totals.committed])(await rollouts.view(r.id));
    assert.deepEqual(await at(), ['running', 0, 10], 'finished, but held: nobody has had 10 minutes to go quiet');

    clock.advance(300_000);
    await report();
    await rollouts.tick();
    assert.deepEqual(await at(), ['running', 0, 10], 'still held');
    clock.advance(360_000);
    await report();
    await rollouts.tick();
    const view = await rollouts.view(r.id);
    assert.deepEqual([view.state, view.currentWave], ['paused', 0]);
    // 4 of the 10 updated devices said nothing since their commit; of the rest, dev-0020 (1 of 29 heard since the wave began).
    assert.match(view.reason ?? '', /^wave 1: health gate: 40\.0 % of updated devices went silent \(nothing heard for 10 min after their update\) against 3\.4 % of the rest$/);
    assert.equal(fleet.notified.size, 10, 'the second wave never started');

    await rollouts.control(r.id, 'resume', 'the four are on a site with a dead uplink', 'usr_ops');
    await fleet.drain();
    await rollouts.idle();
    assert.deepEqual(await at(), ['running', 1, 39]);
    clock.advance(660_000);
    await report(true);
    await rollouts.tick();
    assert.deepEqual(await at(), ['running', 1, 39], 'every updated device of wave 2 talks: the gate holds, dev-0039 is still pending');
    fleet.offline.delete('dev-0039');
    await fleet.settle();
    clock.advance(600_001); // a wave is held until silentAfterMs has passed since its last commit, not merely reached
    await report(true);
    await rollouts.tick();
    assert.deepEqual(await at(), ['completed', 1, 40]);
  });

  it('pauses when more updated devices stopped sending telemetry than the rest, though they still connect and report health', async (t) => {
    const fleet = await simFleet(t, 30);
    const { rollouts, store, clock } = fleet;
    const ids = Array.from({ length: 30 }, (_, i) => `dev-${String(i).padStart(4, '0')}`);
    const stopped = new Set<string>();
    let n = 0;
    const send = async () => {
      const at = clock.now();
      await store.telemetry.insertBatch(
        ids
          .filter((id) => !stopped.has(id))
          .map((deviceId) => ({
            deviceId,
            msgId: `m${++n}`,
            schemaId: 'env@1',
            seq: null,
            boot: null,
            deviceTs: at,
            receivedAt: at,
            ts: at,
            skewMs: 0,
            data: { t: 20 },
          })),
      );
      for (const deviceId of ids) await store.health.insert({ deviceId, receivedAt: at, report: { ts: at, boot: 'a', uptimeS: 60 } }, 10);
    };
    await send();
    clock.advance(60_000);
    await send();
    const r = await rollouts.create(
      {
        name: 'g',
        artifactId: fleet.artifact.id,
        target: { model: 'gw-1' },
        strategy: { canary: ids.slice(0, 10), waves: [{ percent: 100 }] },
        gates: { minDevices: 5, maxTelemetryGapExcessPercent: 20, maxSilentExcessPercent: 20, onFailure: 'pause' },
      },
      'usr_ops',
    );
    await fleet.drain();
    await rollouts.idle();
    // The new image broke the sensor on four of the ten; one device not updated stops too (the baseline).
    for (const id of ['dev-0000', 'dev-0001', 'dev-0002', 'dev-0003', 'dev-0020']) stopped.add(id);
    for (let minute = 0; minute < 11; minute += 1) {
      clock.advance(60_000);
      await send();
      await rollouts.tick();
    }
    const view = await rollouts.view(r.id);
    assert.deepEqual([view.state, view.currentWave], ['paused', 0], view.reason ?? '');
    assert.match(view.reason ?? '', /^wave 1: telemetry gate: 40\.0 % of updated devices stopped sending telemetry \(none for 10 min after their update\) against 5\.0 % of the rest$/);
    assert.equal(fleet.notified.size, 10, 'the second wave never started');
  });

  it('pauses, resumes and aborts by hand with a reason, retries a silent device after the timeout, and notifies only inside the maintenance window', async (t) => {
    const fleet = await simFleet(t, 30, { start: Date.UTC(2026, 5, 1, 12) });
    const { rollouts, clock } = fleet;
    fleet.silent.add('dev-0003');
    fleet.offline.add('dev-0004');
    const r = await rollouts.create(
      {
        name: 'w',
        artifactId: fleet.artifact.id,
        target: { deviceIds: Array.from({ length: 30 }, (_, i) => `dev-${String(i).padStart(4, '0')}`) },
        strategy: { canary: ['dev-0003', 'dev-0004', 'dev-0005'], waves: [{ percent: 100 }] },
        gates: { ...gates, maxFailures: 0 },
        window: { startMinute: 120, endMinute: 240 },
        maxRetries: 1,
      },
      'usr_ops',
    );
    assert.equal(fleet.notified.size, 0, 'outside the window nobody is told');
    clock.set(Date.UTC(2026, 5, 2, 2, 30));
    await rollouts.tick();
    assert.deepEqual([...fleet.notified.keys()].sort(), ['dev-0003', 'dev-0005'], 'the connected canaries');
    await fleet.drain();
    await rollouts.idle();
    fleet.offline.delete('dev-0004');

    let view = await rollouts.control(r.id, 'pause', 'waiting for the field team', 'usr_ops');
    assert.deepEqual([view.state, view.reason], ['paused', 'waiting for the field team']);
    await rollouts.tick();
    assert.equal(await fleet.drain(), 0, 'paused: nobody is told');
    await assert.rejects(rollouts.control(r.id, 'pause', 'again', 'usr_ops'), (e: Error & { code?: string }) => e.code === 'BULWARK_ERR_ROLLOUT_STATE');
    await rollouts.control(r.id, 'resume', 'field team ready', 'usr_ops');
    assert.ok(fleet.notified.has('dev-0004'), 'back online, it gets its job');
    await fleet.drain();

    clock.advance(600_001);
    await rollouts.tick();
    assert.equal(fleet.notified.get('dev-0003')?.length, 2, 'silent past ota.deviceTimeoutMs: retried with a new job');
    assert.notEqual(fleet.notified.get('dev-0003')?.[1]?.jobId, fleet.notified.get('dev-0003')?.[0]?.jobId);
    assert.equal(fleet.notified.get('dev-0003')?.[1]?.attempt, 2);
    clock.advance(600_001);
    await rollouts.tick();
    view = await rollouts.view(r.id);
    assert.equal(view.state, 'paused', 'retries spent: the failure gate (maxFailures 0) holds the canary wave');
    assert.match(view.reason ?? '', /wave 1: failure gate: 1 devices failed/);
    assert.equal((await rollouts.devices(r.id, { states: ['failed'], limit: 10 }))[0]?.reason, 'timeout');

    view = await rollouts.control(r.id, 'abort', 'canary device lost', 'usr_ops');
    assert.deepEqual([view.state, view.reason], ['aborted', 'canary device lost']);
    await rollouts.tick();
    assert.equal(fleet.notified.size, 3, 'only the canaries were ever told');
  });

  it('targets devices by their current version, and refuses a rollout of expired firmware or a target with no eligible device', async (t) => {
    const fleet = await simFleet(t, 3);
    await assert.rejects(fleet.rollouts.create({ name: 'n', artifactId: fleet.artifact.id, target: { tag: 'nobody' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'u'), (e: Error & { code?: string }) => e.code === 'BULWARK_ERR_BAD_REQUEST');
    await fleet.registry.update('dev-0001', { firmwareVersion: '1.1.0' });
    const byVersion = await fleet.rollouts.create({ name: 'v', artifactId: fleet.artifact.id, target: { tag: 'fleet', firmwareVersion: '1.1.0' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'u');
    assert.deepEqual(
      (await fleet.rollouts.devices(byVersion.id, { limit: 10 })).map((d) => [d.deviceId, d.fromVersion]),
      [['dev-0001', '1.1.0']],
    );
    await fleet.rollouts.control(byVersion.id, 'abort', 'test over', 'u');
    fleet.clock.advance(31 * 86_400_000);
    await assert.rejects(
      fleet.rollouts.create({ name: 'n', artifactId: fleet.artifact.id, target: { tag: 'fleet' }, strategy: { waves: [{ percent: 100 }] }, gates }, 'u'),
      (e: Error & { code?: string; details?: { reason?: string } }) => e.code === 'BULWARK_ERR_FIRMWARE_REFUSED' && e.details?.reason === 'expired',
    );
  });
});
