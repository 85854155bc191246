import { type TestContext } from 'node:test';
import { ManualClock, SequentialIds } from '@bulwark/core';
import { type OtaCancel, type OtaJob, type OtaStatus, verifyFirmware } from '@bulwark/protocol';
import pino from 'pino';
import { MemoryBus } from '../bus/index.js';
import { ArtifactStore, FirmwareService, type FirmwareArtifact, RolloutService } from '../ota/index.js';
import { RegistryService } from '../registry/index.js';
import { type Store, openStore } from '../store/index.js';
import { type FirmwareKit, firmwareKit } from './firmware.js';
import { tempDir } from './harness.js';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Test-only: the OTA context over a real SQLite file with a fleet of simulated devices that
 * answer jobs through the public status handler. Each device verifies the job's manifest with
 * the protocol's verifier against its pinned root, as the agent will, then reports its way to
 * committed, or fails where the test says so.
 */
export interface SimFleet {
  readonly store: Store;
  readonly clock: ManualClock;
  readonly registry: RegistryService;
  readonly firmware: FirmwareService;
  readonly rollouts: RolloutService;
  readonly kit: FirmwareKit;
  readonly artifact: FirmwareArtifact;
  /** Every job sent, by device, in order. */
  readonly notified: Map<string, OtaJob[]>;
  /** Every cancel sent, by device, in order. */
  readonly cancels: Map<string, OtaCancel[]>;
  /** Devices whose update fails (reason, and the state it fails in). */
  readonly failing: Map<string, { state: 'failed' | 'rolled-back'; reason: string }>;
  /** Devices that receive jobs but never answer. */
  readonly silent: Set<string>;
  readonly offline: Set<string>;
  /** Runs just before a device reports committed (e.g. to store the health it reports after the update). */
  onCommit: (deviceId: string) => Promise<void>;
  /** Answers every job waiting; resolves with how many there were. */
  drain(): Promise<number>;
  /** Ticks and drains until nothing is left to answer. */
  settle(): Promise<void>;
}

/** A device's answer to a job: resolves once the device has reported its way to the end of the job (or stopped answering). */
export type DeviceAnswer = (fleet: SimFleet, deviceId: string, message: OtaJob | OtaCancel) => Promise<void>;

export async function simFleet(t: TestContext, size: number, options: { start?: number; answer?: DeviceAnswer; image?: Buffer } = {}): Promise<SimFleet> {
  const dir = tempDir(t, 'bulwark-ota-');
  const clock = new ManualClock(options.start ?? Date.UTC(2026, 5, 1, 12));
  const store = await openStore({ engine: 'sqlite', location: `${dir}/bulwark.db` }, clock);
  t.after(() => store.close());
  const log = pino({ level: 'silent' });
  const ids = new SequentialIds();
  const bus = new MemoryBus(log);
  const registry = new RegistryService(store.devices, clock, bus);
  await registry.createMany(Array.from({ length: size }, (_, i) => ({ id: `dev-${String(i).padStart(4, '0')}`, model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0', securityVersion: 4, tags: ['fleet'] })));
  for (let i = 0; i < size; i += 1) await registry.markProvisioned(`dev-${String(i).padStart(4, '0')}`);
  const kit = firmwareKit(dir, clock.now());
  const firmware = new FirmwareService(store.firmware, new ArtifactStore(dir), { rootKeysFile: kit.rootFile, artifactMaxBytes: 1 << 20, minSecurityVersion: 0 }, { clock, ids, log });
  const image = options.image ?? randomBytes(4096);
  const registered = await firmware.register(kit.release(image), 'usr_test');
  const artifact = await firmware.receiveImage(registered.id, Readable.from([image]));
  const root = firmware.rootKeys();

  const notified = new Map<string, OtaJob[]>();
  const failing = new Map<string, { state: 'failed' | 'rolled-back'; reason: string }>();
  const silent = new Set<string>();
  const offline = new Set<string>();
  const cancels = new Map<string, OtaCancel[]>();
  const answered = new Set<string>();
  const cancelledJobs = new Set<string>();
  const queue: [string, OtaJob | OtaCancel][] = [];
  const rollouts = new RolloutService(
    store.rollouts,
    firmware,
    registry,
    { deviceTimeoutMs: 600_000, defaultMaxRetries: 1 },
    {
      clock,
      ids,
      log,
      health: store.health,
      telemetry: store.telemetry,
      link: {
        isConnected: (id) => !offline.has(id),
        publish: async (id, _topic, message) => {
          const job = message as OtaJob;
          if ('cancel' in message) cancels.set(id, [...(cancels.get(id) ?? []), message as OtaCancel]);
          else notified.set(id, [...(notified.get(id) ?? []), job]);
          queue.push([id, job]);
          return true;
        },
      },
    },
  );

  const answer = async (id: string, message: OtaJob | OtaCancel) => {
    if (silent.has(id)) return;
    if (options.answer) return options.answer(fleet, id, message);
    if ('cancel' in message) {
      if (answered.has(message.jobId)) return;
      cancelledJobs.add(message.jobId);
      return void (await rollouts.onStatus(id, { jobId: message.jobId, state: 'failed', ts: clock.now(), reason: 'cancelled' }));
    }
    const job = message;
    if (cancelledJobs.has(job.jobId)) return;
    answered.add(job.jobId);
    const status = (state: OtaStatus['state'], extra: Partial<OtaStatus> = {}) => rollouts.onStatus(id, { jobId: job.jobId, state, ts: clock.now(), ...extra });
    const device = await registry.get(id);
    const verdict = verifyFirmware(job.manifest, { root, now: clock.now(), minSecurityVersion: device.securityVersion ?? 0, installedVersion: device.firmwareVersion ?? '0.0.0', device });
    await status('queued');
    if (!verdict.ok) return void (await status('failed', { reason: verdict.reason }));
    await status('downloading', { bytes: 0 });
    await status('verifying');
    const fails = failing.get(id);
    if (fails?.state === 'failed') return void (await status('failed', { reason: fails.reason }));
    await status('installing');
    await status('rebooting');
    await status('verifying-health');
    if (fails) return void (await status('rolled-back', { reason: fails.reason, firmware: { version: '1.0.0' } }));
    await fleet.onCommit(id);
    await status('committed', { firmware: { version: verdict.release.version, securityVersion: verdict.release.securityVersion } });
  };
  // A cancel that arrived with its job in one batch reached the device before it acted on the job.
  const drain = async () => {
    const batch = queue.splice(0);
    const ordered = [...batch.filter(([, m]) => 'cancel' in m), ...batch.filter(([, m]) => !('cancel' in m))];
    for (const [id, m] of ordered) await answer(id, m);
    return batch.length;
  };
  const fleet: SimFleet = {
    onCommit: async () => undefined,
    store,
    clock,
    registry,
    firmware,
    rollouts,
    kit,
    artifact,
    notified,
    cancels,
    failing,
    silent,
    offline,
    drain,
    async settle() {
      for (let round = 0; round < 1000; round += 1) {
        await rollouts.tick();
        await rollouts.idle();
        if ((await drain()) === 0) return;
        await rollouts.idle();
      }
      throw new Error('the fleet did not settle');
    },
  };
  return fleet;
}

/** The rollout of the 1,000-device tests: waves of 1, 10, 50 and 100 %, aborting past 5 % failures, one retry; and 8 % of its second wave, to make fail. */
export async function stagedRollout(fleet: SimFleet) {
  const created = await fleet.rollouts.create(
    {
      name: 'gw 2.0.0',
      artifactId: fleet.artifact.id,
      target: { tag: 'fleet' },
      maxRetries: 1,
      strategy: { waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }] },
      gates: { minDevices: 20, maxFailurePercent: 5, onFailure: 'abort' },
    },
    'usr_ops',
  );
  const wave2 = (await fleet.rollouts.devices(created.id, { wave: 1, limit: 1000 })).map((d) => d.deviceId);
  return { created, bad: wave2.filter((_, i) => i % 12 === 5).slice(0, Math.round(wave2.length * 0.08)) };
}
