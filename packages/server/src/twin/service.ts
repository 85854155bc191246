import { isDeepStrictEqual } from 'node:util';
import { type Clock, type Logger, PlatformError } from '@bulwark/core';
import { DEVICE_MESSAGE_LIMITS, type TwinDesired, type TwinReported, deviceTopics } from '@bulwark/protocol';
import type { EventBus } from '../bus/index.js';
import type { DesiredState, ReportedState, TwinRecord, TwinRepository } from './twin.js';

/** How the platform reaches a connected device; false when it is not connected here. */
export interface DeviceLink {
  isConnected(deviceId: string): boolean;
  /** Whether the device's session is on this node (in a cluster the others route to it). */
  isHere(deviceId: string): boolean;
  /** `options`: MQTT 5 message expiry and request/response properties (ignored where the device cannot use them). */
  publish(deviceId: string, topic: string, message: object, options?: { expiresAt?: number; responseTopic?: string; correlationData?: Buffer }): Promise<boolean>;
}

export interface TwinView {
  readonly deviceId: string;
  readonly desired: DesiredState | null;
  readonly reported: ReportedState | null;
  readonly inSync: boolean;
  readonly driftSince: number | null;
  /** Out of sync for longer than twin.driftThresholdMs. */
  readonly drifted: boolean;
}

/**
 * The drift rule: in sync when nothing is desired, or when the device's last report applied
 * exactly the desired version and every desired key has the same value in the reported
 * configuration (the device may report more keys, e.g. its defaults).
 */
export function inSync(desired: DesiredState | null, reported: ReportedState | null): boolean {
  if (!desired) return true;
  if (!reported || reported.status !== 'applied' || reported.version !== desired.version) return false;
  return Object.entries(desired.config).every(([k, v]) => isDeepStrictEqual(reported.config[k], v));
}

const bytes = (o: unknown) => Buffer.byteLength(JSON.stringify(o));

/**
 * Desired and reported configuration per device. In a cluster the node that stores a new
 * desired configuration may not see the device's session where it is (it is moving between
 * nodes): when its delivery fails it says so on the bus (`twin.waiting`), and the node holding
 * the session sends the stored configuration, so a change never waits for the next connect.
 */
export class TwinService {
  readonly #reportListeners: ((deviceId: string, r: ReportedState) => Promise<void>)[] = [];

  constructor(
    private readonly repo: TwinRepository,
    private readonly deps: { clock: Clock; link: DeviceLink; bus: EventBus; log: Logger; driftThresholdMs: number; assertDevice: (id: string) => Promise<void> },
  ) {
    deps.bus.subscribe('twin.waiting', async (e) => {
      if (!deps.link.isHere(e.deviceId)) return;
      await this.deliver(e.deviceId).catch((err: unknown) => deps.log.warn({ err, deviceId: e.deviceId }, 'could not send a desired configuration waiting for a device'));
    });
  }

  #view(deviceId: string, t: TwinRecord | undefined): TwinView {
    const desired = t?.desired ?? null;
    const reported = t?.reported ?? null;
    const driftSince = t?.driftSince ?? null;
    return {
      deviceId,
      desired,
      reported,
      inSync: inSync(desired, reported),
      driftSince,
      drifted: driftSince !== null && this.deps.clock.now() - driftSince >= this.deps.driftThresholdMs,
    };
  }

  async get(deviceId: string): Promise<TwinView> {
    await this.deps.assertDevice(deviceId);
    return this.#view(deviceId, await this.repo.get(deviceId));
  }

  /**
   * Sets the next desired configuration (version = previous + 1) and sends it to the device
   * when it is connected. With `ifVersion`, only over that version (else VERSION_CONFLICT).
   */
  async setDesired(deviceId: string, config: Record<string, unknown>, by: string, ifVersion?: number): Promise<TwinView> {
    await this.deps.assertDevice(deviceId);
    await this.#write(deviceId, () => config, by, ifVersion);
    return this.get(deviceId);
  }

  /**
   * Merges `patch` over the desired configuration (a `null` value removes its key) as the next
   * version; a change made beside it is merged again rather than lost. Resolves with what is desired now.
   */
  async patchDesired(deviceId: string, patch: Readonly<Record<string, unknown>>, by: string): Promise<DesiredState> {
    await this.deps.assertDevice(deviceId);
    return this.#write(
      deviceId,
      (current) => {
        const config: Record<string, unknown> = { ...(current?.config ?? {}) };
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete config[k];
          else config[k] = v;
        }
        return config;
      },
      by,
    );
  }

  /** Stores the next desired version (compare-and-set, tried again on a race unless `ifVersion` is given) and sends it. */
  async #write(deviceId: string, make: (current: DesiredState | null) => Record<string, unknown>, by: string, ifVersion?: number): Promise<DesiredState> {
    for (let attempt = 0; ; attempt += 1) {
      const current = await this.repo.get(deviceId);
      const seen = current?.desired?.version ?? 0;
      if (ifVersion !== undefined && ifVersion !== seen) {
        throw new PlatformError('BULWARK_ERR_VERSION_CONFLICT', `the desired configuration of ${deviceId} is at version ${seen}, not ${ifVersion}`, { details: { currentVersion: seen } });
      }
      const config = make(current?.desired ?? null);
      const desired: DesiredState = { version: seen + 1, config, updatedAt: this.deps.clock.now(), updatedBy: by };
      const size = bytes({ version: desired.version, config, ts: desired.updatedAt } satisfies TwinDesired);
      if (size > DEVICE_MESSAGE_LIMITS.twinMaxBytes) {
        throw new PlatformError('BULWARK_ERR_DEVICE_MESSAGE_TOO_LARGE', `the desired configuration is ${size} bytes on the wire; devices accept at most ${DEVICE_MESSAGE_LIMITS.twinMaxBytes}`);
      }
      if (await this.repo.putDesired(deviceId, seen, desired)) {
        await this.#trackDrift({ deviceId, desired, reported: current?.reported ?? null, driftSince: current?.driftSince ?? null });
        if (!(await this.#send(deviceId, desired))) {
          await this.deps.bus.publish({ type: 'twin.waiting', deviceId }).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'could not announce a waiting desired configuration'));
        }
        return desired;
      }
      if (ifVersion !== undefined || attempt >= 5) {
        throw new PlatformError('BULWARK_ERR_VERSION_CONFLICT', `the desired configuration of ${deviceId} changed while this request ran; retry`);
      }
    }
  }

  /** `fn` runs (and is awaited) after each report from a device is stored. */
  onReport(fn: (deviceId: string, r: ReportedState) => Promise<void>): void {
    this.#reportListeners.push(fn);
  }

  /** Sends the stored desired configuration to the device (on subscribe, on connect, after a change). */
  async deliver(deviceId: string): Promise<boolean> {
    if (!this.deps.link.isConnected(deviceId)) return false;
    const desired = (await this.repo.get(deviceId))?.desired;
    return desired ? this.#send(deviceId, desired) : false;
  }

  #send(deviceId: string, desired: DesiredState): Promise<boolean> {
    if (!this.deps.link.isConnected(deviceId)) return Promise.resolve(false);
    const message: TwinDesired = { version: desired.version, config: desired.config, ts: this.deps.clock.now() };
    return this.deps.link.publish(deviceId, deviceTopics(deviceId).twinDesired, message);
  }

  /** A validated report from the device. Resolves with the outcome to count. */
  async onReported(deviceId: string, r: TwinReported): Promise<string> {
    const current = await this.repo.get(deviceId);
    const desiredVersion = current?.desired?.version ?? 0;
    if (r.version > desiredVersion) {
      this.deps.log.warn({ deviceId, version: r.version, desiredVersion }, 'twin report for a version never desired; ignored');
      return 'unknown_version';
    }
    const reported: ReportedState = {
      version: r.version,
      status: r.status,
      config: r.config,
      reason: r.reason ?? null,
      detail: r.detail ?? null,
      deviceTs: r.ts,
      receivedAt: this.deps.clock.now(),
    };
    await this.repo.putReported(deviceId, reported);
    await this.#trackDrift({ deviceId, desired: current?.desired ?? null, reported, driftSince: current?.driftSince ?? null });
    for (const fn of this.#reportListeners) await fn(deviceId, reported).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'a twin report listener failed'));
    return r.version < desiredVersion ? 'stale_version' : r.status;
  }

  async #trackDrift(t: TwinRecord): Promise<void> {
    const ok = inSync(t.desired, t.reported);
    if (ok && t.driftSince !== null) await this.repo.setDriftSince(t.deviceId, null);
    if (!ok && t.driftSince === null) await this.repo.setDriftSince(t.deviceId, this.deps.clock.now());
  }

  /** Devices out of sync for longer than the threshold, longest first. */
  async drifted(limit: number): Promise<TwinView[]> {
    const rows = await this.repo.listDrifting(this.deps.clock.now() - this.deps.driftThresholdMs, limit);
    return rows.map((r) => this.#view(r.deviceId, r));
  }
}
