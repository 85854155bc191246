import { type Clock, type IdGen, type Logger, PlatformError, Serial } from '@bulwark/core';
import { OTA_CANCELLABLE_STATES, OTA_STATES, OTA_TERMINAL_STATES, type OtaStatus, deviceTopics } from '@bulwark/protocol';
import type { HealthRepository } from '../health/index.js';
import type { TelemetryRepository } from '../ingest/index.js';
import type { Device, GroupSelector, RegistryService } from '../registry/index.js';
import type { FirmwareService } from './firmware-service.js';
import { firmwareRefused } from './firmware-service.js';
import type { FirmwareArtifact, MaintenanceWindow, Rollout, RolloutDevice, RolloutGates, RolloutRepository, RolloutState, RolloutStrategy, RolloutTarget } from './ota.js';
import { type EngineDeps, type OtaLink, cancelMessage, jobMessage, moveRollout, runPhases } from './rollout-engine.js';
import { planWaves, tally } from './rollout-planner.js';

export interface NewRollout {
  readonly name: string;
  readonly artifactId: string;
  readonly target: RolloutTarget;
  readonly strategy: RolloutStrategy;
  readonly gates: RolloutGates;
  readonly window?: MaintenanceWindow;
  readonly maxRetries?: number;
}

export interface WaveProgress {
  readonly wave: number;
  readonly total: number;
  readonly committed: number;
  readonly failed: number;
  readonly inProgress: number;
  readonly pending: number;
}

export interface RolloutView extends Rollout {
  readonly artifact: { readonly id: string; readonly name: string; readonly version: string };
  readonly waves: WaveProgress[];
  readonly totals: Omit<WaveProgress, 'wave'>;
}

export interface RolloutSettings {
  readonly deviceTimeoutMs: number;
  readonly defaultMaxRetries: number;
}

const ELIGIBLE = new Set(['provisioned', 'active']);

/**
 * Staged rollouts: create (plan waves over the target), run (the engine's phases, on a timer
 * and after device reports), pause / resume / abort by hand, and the device status handler.
 * Passes are serialised in this process; the store's compare-and-set guards the rest.
 */
export class RolloutService {
  readonly #serial = new Serial();
  #queued = false;
  readonly #statusChains = new Map<string, Promise<string>>();
  readonly #engine: EngineDeps;
  readonly #defaultMaxRetries: number;

  constructor(
    private readonly repo: RolloutRepository,
    private readonly firmware: FirmwareService,
    private readonly registry: RegistryService,
    settings: RolloutSettings,
    private readonly deps: {
      clock: Clock;
      ids: IdGen;
      log: Logger;
      link: OtaLink;
      health: HealthRepository;
      telemetry: Pick<TelemetryRepository, 'query'>;
      onStop?: (r: Rollout) => void;
      /** Resolves a device group for targets that name one (BULWARK_ERR_NOT_FOUND when there is none). */
      groups?: { selector(id: string): Promise<GroupSelector> };
    },
  ) {
    const lastSeenAt = async (id: string) => (await registry.find(id))?.connectivity.lastSeenAt ?? null;
    const telemetryBetween = async (deviceId: string, sinceMs: number, untilMs: number) => (await deps.telemetry.query({ deviceId, sinceMs, untilMs, limit: 1 })).length > 0;
    this.#engine = { repo, health: deps.health, lastSeenAt, telemetryBetween, link: deps.link, clock: deps.clock, ids: deps.ids, log: deps.log, deviceTimeoutMs: settings.deviceTimeoutMs, ...(deps.onStop ? { onStop: deps.onStop } : {}) };
    this.#defaultMaxRetries = settings.defaultMaxRetries;
  }

  async create(input: NewRollout, by: string): Promise<RolloutView> {
    const artifact = await this.firmware.get(input.artifactId);
    if (artifact.state !== 'published') throw new PlatformError('BULWARK_ERR_CONFLICT', `firmware ${artifact.id} has no image yet`);
    if (artifact.expiresAt <= this.deps.clock.now()) throw firmwareRefused('expired', `the metadata of ${artifact.name} ${artifact.version} has expired; sign it again`);
    if (input.strategy.waves.length === 0 && (input.strategy.canary ?? []).length === 0) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'a rollout needs at least one wave or a canary set');
    const { devices, skipped } = await this.#resolve(input.target, artifact);
    const id = this.deps.ids.next('ro');
    const waves = planWaves(
      id,
      devices.map((d) => d.id),
      input.strategy,
    );
    if (waves.length === 0) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `no device to update (${describeSkipped(skipped) || 'the target matches no device'})`, { details: { skipped } });
    const now = this.deps.clock.now();
    const version = new Map(devices.map((d) => [d.id, d.firmwareVersion]));
    const rows: RolloutDevice[] = waves.flatMap((ids, wave) =>
      ids.map((deviceId) => ({
        rolloutId: id,
        deviceId,
        wave,
        state: 'pending' as const,
        jobId: null,
        attempts: 0,
        fromVersion: version.get(deviceId) ?? null,
        reason: null,
        notifiedAt: null,
        updatedAt: now,
      })),
    );
    const reason = `created: ${rows.length} devices in ${waves.length} waves${skipped && describeSkipped(skipped) ? `; skipped ${describeSkipped(skipped)}` : ''}`;
    const rollout: Rollout = {
      id,
      name: input.name,
      artifactId: artifact.id,
      target: input.target,
      strategy: input.strategy,
      gates: input.gates,
      window: input.window ?? null,
      maxRetries: input.maxRetries ?? this.#defaultMaxRetries,
      state: 'running',
      reason: null,
      currentWave: 0,
      waveCount: waves.length,
      history: [{ at: now, wave: 0, state: 'running', actor: by, reason }],
      createdBy: by,
      createdAt: now,
      updatedAt: now,
    };
    await this.repo.insert(rollout, rows);
    await this.tick();
    return this.view(id);
  }

  async #resolve(target: RolloutTarget, a: FirmwareArtifact): Promise<{ devices: Device[]; skipped: Record<string, number> }> {
    const candidates: Device[] = [];
    if (target.deviceIds && target.group !== undefined) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'name the target by deviceIds or by group, not both');
    if (target.deviceIds) {
      for (const id of target.deviceIds) {
        const d = await this.registry.find(id);
        if (!d) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no device ${id}`);
        candidates.push(d);
      }
    } else {
      if (target.tag === undefined && target.model === undefined && target.firmwareVersion === undefined && target.group === undefined) {
        throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'name the target: deviceIds, group, tag, model or firmwareVersion');
      }
      const group = target.group === undefined ? undefined : await this.#group(target.group);
      for (let after: string | undefined; ;) {
        const page = await this.registry.list({
          limit: 1000,
          ...(group ? { group } : {}),
          ...(target.tag ? { tag: target.tag } : {}),
          ...(target.model ? { model: target.model } : {}),
          ...(target.firmwareVersion ? { firmwareVersion: target.firmwareVersion } : {}),
          ...(after ? { after } : {}),
        });
        candidates.push(...page);
        if (page.length < 1000) break;
        after = page.at(-1)?.id;
      }
    }
    const skipped: Record<string, number> = {};
    const skip = (why: string) => ((skipped[why] = (skipped[why] ?? 0) + 1), false);
    const devices = candidates.filter((d) => {
      if (target.tag !== undefined && !d.tags.includes(target.tag)) return skip('not tagged');
      if (target.model !== undefined && d.model !== target.model) return skip('other model');
      if (target.firmwareVersion !== undefined && d.firmwareVersion !== target.firmwareVersion) return skip('other firmware version');
      if (!ELIGIBLE.has(d.state)) return skip(d.state);
      if (d.model !== a.model || d.hardwareRevision === null || !a.hardwareRevisions.includes(d.hardwareRevision)) return skip('incompatible hardware');
      if (d.firmwareVersion === a.version) return skip(`already on ${a.version}`);
      return true;
    });
    return { devices, skipped };
  }

  #group(id: string): Promise<GroupSelector> {
    if (!this.deps.groups) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'device groups are not available here');
    return this.deps.groups.selector(id);
  }

  async get(id: string): Promise<Rollout> {
    const r = await this.repo.get(id);
    if (!r) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no rollout ${id}`);
    return r;
  }

  async view(id: string): Promise<RolloutView> {
    return this.#view(await this.get(id));
  }

  async #view(r: Rollout): Promise<RolloutView> {
    const artifact = await this.firmware.get(r.artifactId);
    const counts = await this.repo.counts(r.id);
    const waves = counts.map(({ wave, byState }) => {
      const t = tally(byState);
      const pending = byState.pending ?? 0;
      return { wave, total: t.total, committed: t.committed, failed: t.failed, pending, inProgress: t.total - t.finished - pending };
    });
    const sum = (k: keyof Omit<WaveProgress, 'wave'>) => waves.reduce((a, w) => a + w[k], 0);
    return {
      ...r,
      artifact: { id: artifact.id, name: artifact.name, version: artifact.version },
      waves,
      totals: { total: sum('total'), committed: sum('committed'), failed: sum('failed'), inProgress: sum('inProgress'), pending: sum('pending') },
    };
  }

  async list(limit: number, state?: RolloutState): Promise<RolloutView[]> {
    return Promise.all((await this.repo.list(limit, state)).map((r) => this.#view(r)));
  }

  devices(id: string, filter: { wave?: number; states?: readonly RolloutDevice['state'][]; limit: number }): Promise<RolloutDevice[]> {
    return this.repo.devices(id, filter);
  }

  /** Manual control: pause a running rollout, resume a paused one, abort either. */
  async control(id: string, action: 'pause' | 'resume' | 'abort', reason: string, by: string): Promise<RolloutView> {
    await this.#serial.run(async () => {
      const r = await this.get(id);
      const allowed: Record<typeof action, RolloutState[]> = { pause: ['running'], resume: ['paused'], abort: ['running', 'paused'] };
      if (!allowed[action].includes(r.state)) throw new PlatformError('BULWARK_ERR_ROLLOUT_STATE', `cannot ${action} rollout ${id}: it is ${r.state}`, { details: { state: r.state } });
      const to: RolloutState = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'aborted';
      await moveRollout(this.#engine, r, to, action === 'resume' ? `resumed: ${reason}` : reason, by);
    });
    if (action === 'resume') await this.tick();
    return this.view(id);
  }

  /** One pass of the engine over every running rollout. */
  tick(): Promise<void> {
    return this.#serial.run(() => this.#pass());
  }

  /** A pass soon (coalesced): after device reports. */
  schedule(): void {
    if (this.#queued) return;
    this.#queued = true;
    void this.#serial.run(async () => {
      this.#queued = false;
      await this.#pass();
    });
  }

  async #pass(): Promise<void> {
    for (const r of await this.repo.list(1000, 'running')) {
      try {
        const artifact = await this.firmware.get(r.artifactId);
        await runPhases({ rollout: r, artifact, now: this.deps.clock.now(), counts: await this.repo.counts(r.id) }, this.#engine);
      } catch (err) {
        this.deps.log.error({ err, rolloutId: r.id }, 'rollout pass failed');
      }
    }
  }

  /** Resolves when every pass started so far has finished. */
  idle(): Promise<void> {
    return this.#serial.idle();
  }

  /** A validated status from `devices/{id}/ota/status`; resolves with the outcome to count. */
  onStatus(deviceId: string, s: OtaStatus): Promise<string> {
    // One device's statuses are judged one after another, in arrival order: a status that
    // arrives while the last is still being written would otherwise lose the race (conflict).
    const prev = this.#statusChains.get(deviceId) ?? Promise.resolve('');
    const next = prev.then(
      () => this.#applyStatusRetrying(deviceId, s),
      () => this.#applyStatusRetrying(deviceId, s),
    );
    this.#statusChains.set(deviceId, next);
    void next
      .finally(() => {
        if (this.#statusChains.get(deviceId) === next) this.#statusChains.delete(deviceId);
      })
      .catch(() => undefined);
    return next;
  }

  /** Another node may write the same record (scale-out): on a conflict, judge again on what is stored now. */
  async #applyStatusRetrying(deviceId: string, s: OtaStatus): Promise<string> {
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await this.#applyStatus(deviceId, s);
      if (outcome !== 'conflict' || attempt === 2) return outcome;
    }
  }

  async #applyStatus(deviceId: string, s: OtaStatus): Promise<string> {
    const d = await this.repo.deviceByJob(s.jobId);
    if (!d || d.deviceId !== deviceId) return 'unknown_job';
    if ((OTA_TERMINAL_STATES as readonly string[]).includes(d.state)) return 'late';
    const rank = (x: string) => OTA_STATES.indexOf(x as (typeof OTA_STATES)[number]);
    if (!OTA_TERMINAL_STATES.includes(s.state) && rank(s.state) < rank(d.state)) return 'out_of_order';
    const r = await this.get(d.rolloutId);
    const now = this.deps.clock.now();
    const retry = s.state === 'failed' && d.attempts <= r.maxRetries && r.state !== 'aborted';
    const next: RolloutDevice = retry ? { ...d, state: 'pending', jobId: null, reason: s.reason ?? 'failed', updatedAt: now } : { ...d, state: s.state, reason: s.reason ?? null, updatedAt: now };
    if (!(await this.repo.updateDevice(next, [d.state], d.jobId))) return 'conflict';
    if (s.state === 'committed') {
      const a = await this.firmware.get(r.artifactId);
      await this.registry.update(deviceId, { firmwareVersion: a.version, securityVersion: a.securityVersion }).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'could not record the new firmware version'));
    }
    if (OTA_TERMINAL_STATES.includes(s.state)) this.schedule();
    return retry ? 'retry' : s.state;
  }

  /**
   * The device (re)subscribed to its job topic: send again each job it was told about and
   * has not answered yet (a job sent just before a disconnect is otherwise lost until the
   * device timeout). The job id is the same, so a device that had it sees a repeat. A job of
   * an aborted rollout that the device has not begun installing gets its cancel instead.
   */
  async redeliver(deviceId: string): Promise<number> {
    let sent = 0;
    for (const dev of await this.repo.liveJobs(deviceId)) {
      const r = await this.get(dev.rolloutId);
      const message =
        r.state === 'aborted' ? ((OTA_CANCELLABLE_STATES as readonly string[]).includes(dev.state) || dev.state === 'notified' ? cancelMessage(dev, r) : undefined) : dev.state === 'notified' ? jobMessage(dev, await this.firmware.get(r.artifactId)) : undefined;
      if (message && (await this.deps.link.publish(deviceId, deviceTopics(deviceId).otaJob, message))) sent += 1;
    }
    return sent;
  }

  /** The image a device may download: only while it has a live job for that artifact. */
  async download(deviceId: string, artifactId: string): Promise<{ path: string; size: number; sha256: string } | undefined> {
    if (!(await this.repo.activeJob(deviceId, artifactId))) return undefined;
    const a = await this.firmware.get(artifactId);
    return a.state === 'published' ? { path: await this.firmware.imageFile(a), size: a.size, sha256: a.sha256 } : undefined;
  }
}

function describeSkipped(s: Record<string, number>): string {
  return Object.entries(s)
    .map(([why, n]) => `${n} ${why}`)
    .join(', ');
}
