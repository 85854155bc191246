import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FirmwareArtifact, Rollout, RolloutDevice } from '../../ota/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const manifest = { format: 'bulwark-firmware/1', delegation: { signed: {}, signatures: [] }, release: { signed: { name: 'gw' }, signatures: [{ keyId: 'k', sig: 's' }] } } as unknown as FirmwareArtifact['manifest'];

export const artifact = (id: string, over: Partial<FirmwareArtifact> = {}): FirmwareArtifact => ({
  id,
  name: 'gw-fw',
  version: '2.0.0',
  securityVersion: 5,
  model: 'gw-1',
  hardwareRevisions: ['B', 'C'],
  size: 4096,
  sha256: 'a'.repeat(64),
  expiresAt: T0 + 86_400_000,
  state: 'awaiting_image',
  manifest,
  uploadedBy: 'usr_1',
  createdAt: T0,
  publishedAt: null,
  ...over,
});

export const rollout = (id: string, artifactId: string, over: Partial<Rollout> = {}): Rollout => ({
  id,
  name: 'r',
  artifactId,
  target: { tag: 'fleet' },
  strategy: { canary: ['d0'], waves: [{ percent: 10 }, { count: 5 }] },
  gates: { minDevices: 3, maxFailurePercent: 5, onFailure: 'abort' },
  window: { startMinute: 60, endMinute: 120 },
  maxRetries: 2,
  state: 'running',
  reason: null,
  currentWave: 0,
  waveCount: 2,
  history: [{ at: T0, wave: 0, state: 'running', actor: 'usr_1', reason: 'created' }],
  createdBy: 'usr_1',
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

const device = (rolloutId: string, deviceId: string, wave: number, over: Partial<RolloutDevice> = {}): RolloutDevice => ({
  rolloutId,
  deviceId,
  wave,
  state: 'pending',
  jobId: null,
  attempts: 0,
  fromVersion: '1.0.0',
  reason: null,
  notifiedAt: null,
  updatedAt: T0,
  ...over,
});

/** FirmwareRepository: one release per name and version; published once its image arrived. */
export function describeFirmwareRepository(make: MakeStore): void {
  describe('FirmwareRepository contract', () => {
    it('stores an artifact with its manifest, refuses a second one of the same name and version, and publishes once', async (t) => {
      const { firmware } = await make(t);
      assert.equal(await firmware.insert(artifact('fw_1')), true);
      assert.equal(await firmware.insert(artifact('fw_2')), false, 'same name and version');
      assert.equal(await firmware.insert(artifact('fw_3', { version: '2.0.1', sha256: 'b'.repeat(64), createdAt: T0 + 1 })), true);
      assert.deepEqual(await firmware.get('fw_1'), artifact('fw_1'));
      assert.equal(await firmware.markPublished('fw_1', T0 + 5), true);
      assert.equal(await firmware.markPublished('fw_1', T0 + 6), false);
      assert.deepEqual(await firmware.get('fw_1'), artifact('fw_1', { state: 'published', publishedAt: T0 + 5 }));
      assert.equal((await firmware.findBySha256('b'.repeat(64)))?.id, 'fw_3');
      assert.equal(await firmware.findBySha256('c'.repeat(64)), undefined);
      assert.deepEqual(
        (await firmware.list(10)).map((a) => a.id),
        ['fw_3', 'fw_1'],
      );
      await firmware.delete('fw_1');
      assert.ok(await firmware.get('fw_1'), 'a published artifact is never deleted');
      await firmware.delete('fw_3');
      assert.equal(await firmware.get('fw_3'), undefined);
    });
  });
}

/** RolloutRepository: rollouts with compare-and-set, device jobs moved only from the state (and job) the writer saw. */
export function describeRolloutRepository(make: MakeStore): void {
  describe('RolloutRepository contract', () => {
    it('stores a rollout with its devices, counts them per wave and state, and updates only over the version seen', async (t) => {
      const { firmware, rollouts } = await make(t);
      await firmware.insert(artifact('fw_1'));
      const r = rollout('ro_1', 'fw_1');
      const devices = [device('ro_1', 'd0', 0), device('ro_1', 'd1', 1), device('ro_1', 'd2', 1, { state: 'committed', jobId: 'job_a', attempts: 1 }), device('ro_1', 'd3', 1)];
      await rollouts.insert(r, devices);
      assert.deepEqual(await rollouts.get('ro_1'), r);
      assert.deepEqual(await rollouts.counts('ro_1'), [
        { wave: 0, byState: { pending: 1 } },
        { wave: 1, byState: { pending: 2, committed: 1 } },
      ]);
      const paused = { ...r, state: 'paused' as const, reason: 'gate', currentWave: 1, updatedAt: T0 + 1, history: [...r.history, { at: T0 + 1, wave: 1, state: 'paused' as const, actor: 'system', reason: 'gate' }] };
      assert.equal(await rollouts.update(paused, T0), true);
      assert.equal(await rollouts.update({ ...paused, updatedAt: T0 + 2 }, T0), false, 'a writer that saw the old version loses');
      assert.deepEqual(await rollouts.get('ro_1'), paused);
      await rollouts.insert(rollout('ro_2', 'fw_1', { createdAt: T0 + 10 }), []);
      assert.deepEqual(
        (await rollouts.list(10)).map((x) => x.id),
        ['ro_2', 'ro_1'],
      );
      assert.deepEqual(
        (await rollouts.list(10, 'paused')).map((x) => x.id),
        ['ro_1'],
      );
      assert.deepEqual(
        (await rollouts.devices('ro_1', { wave: 1, states: ['pending'], limit: 10 })).map((d) => d.deviceId),
        ['d1', 'd3'],
      );
      assert.deepEqual(
        (await rollouts.devices('ro_1', { limit: 2 })).map((d) => d.deviceId),
        ['d0', 'd1'],
      );
      assert.deepEqual(await rollouts.devices('ro_1', { states: [], limit: 10 }), []);
    });

    it('moves a device job only from the state and job id the writer saw, and finds live jobs and stale devices', async (t) => {
      const { firmware, rollouts } = await make(t);
      await firmware.insert(artifact('fw_1'));
      await rollouts.insert(rollout('ro_1', 'fw_1'), [device('ro_1', 'd0', 0), device('ro_1', 'd1', 0)]);
      const notified = device('ro_1', 'd0', 0, { state: 'notified', jobId: 'job_1', attempts: 1, notifiedAt: T0 + 5, updatedAt: T0 + 5 });
      assert.equal(await rollouts.updateDevice(notified, ['pending'], null), true);
      assert.equal(await rollouts.updateDevice({ ...notified, jobId: 'job_x' }, ['pending'], null), false, 'no longer pending');
      assert.deepEqual(await rollouts.deviceByJob('job_1'), notified);
      assert.equal((await rollouts.activeJob('d0', 'fw_1'))?.jobId, 'job_1');
      assert.equal(await rollouts.activeJob('d1', 'fw_1'), undefined, 'pending: no job yet');
      assert.deepEqual(
        (await rollouts.liveJobs('d0')).map((d) => d.jobId),
        ['job_1'],
      );
      assert.deepEqual(await rollouts.liveJobs('d1'), []);
      assert.deepEqual(
        (await rollouts.stale('ro_1', T0 + 5, 10)).map((d) => d.deviceId),
        ['d0'],
      );
      assert.deepEqual(await rollouts.stale('ro_1', T0 + 4, 10), []);
      assert.equal(await rollouts.lastCommitAt('ro_1', 0), null, 'nothing committed yet');
      const committed = { ...notified, state: 'committed' as const, updatedAt: T0 + 9 };
      assert.equal(await rollouts.updateDevice(committed, ['notified'], 'job_other'), false, 'another job id');
      assert.equal(await rollouts.updateDevice(committed, ['notified'], 'job_1'), true);
      await rollouts.updateDevice({ ...device('ro_1', 'd1', 0), state: 'failed', jobId: null, updatedAt: T0 + 20 }, ['pending'], null);
      assert.equal(await rollouts.lastCommitAt('ro_1', 0), T0 + 9, 'the newest commit; a later failure is not one');
      assert.equal(await rollouts.lastCommitAt('ro_1', 1), null);
      assert.equal(await rollouts.activeJob('d0', 'fw_1'), undefined, 'a finished job allows no download');
      assert.deepEqual(await rollouts.liveJobs('d0'), [], 'a finished job is not live');
      assert.deepEqual(await rollouts.stale('ro_1', T0 + 100, 10), [], 'finished devices are never stale');
    });
  });
}
