import { type Clock, GenerationalMap, type Logger } from '@bulwark/core';
import type { DeviceEvent, HealthReport } from '@bulwark/protocol';
import type { EventFilter, EventRecord, EventRepository, HealthRecord, HealthRepository } from './health.js';
import { type PostureFinding, type PostureRecord, evaluatePosture, mergePosture } from './posture.js';

export interface HealthSettings {
  readonly historyPerDevice: number;
  readonly minIntervalMs: number;
  readonly retentionDays: number;
}

export interface HealthView {
  readonly deviceId: string;
  readonly latest: HealthRecord | null;
  /** The device said it is in a restart loop in its latest report. */
  readonly restartLoop: boolean;
  readonly history: HealthRecord[];
  /** The newest posture the device reported (possibly in an older report than `latest`), with its findings; null when it never reported one. */
  readonly posture: PostureRecord | null;
}

/**
 * Fleet health: the reports and events devices send about themselves. Reports are kept as a
 * bounded history per device and thinned by a minimum interval; events are stored once per
 * id; both are deleted by age.
 */
export class HealthService {
  readonly #lastReport = new GenerationalMap<string, { at: number; boot: string | undefined }>(100_000);

  constructor(
    private readonly health: HealthRepository,
    private readonly events: EventRepository,
    private readonly settings: HealthSettings,
    private readonly deps: {
      clock: Clock;
      log: Logger;
      assertDevice: (id: string) => Promise<void>;
      onRestartLoop?: (deviceId: string) => void;
      /** Every stored report (the alerts' fleet-health rules read it). */
      onReport?: (deviceId: string, report: HealthReport) => void;
      /** Where the firmware a device reports goes (the registry); resolves with the old values when they differed and were replaced. */
      recordFirmware?: (deviceId: string, fw: NonNullable<HealthReport['firmware']>) => Promise<{ firmwareVersion: string | null; securityVersion: number | null } | undefined>;
      /** The findings of every stored posture (counted in a metric). */
      onPostureFindings?: (deviceId: string, findings: readonly PostureFinding[]) => void;
    },
  ) {}

  /** A validated report; resolves with the outcome to count. */
  async onReport(deviceId: string, report: HealthReport): Promise<string> {
    const now = this.deps.clock.now();
    const last = this.#lastReport.get(deviceId);
    // The first report of a new boot always counts: it says what the device runs now (after a
    // firmware update, or a revert seconds after the update's own report).
    if (last !== undefined && last.boot === report.boot && now - last.at < this.settings.minIntervalMs) return 'too_frequent';
    this.#lastReport.set(deviceId, { at: now, boot: report.boot });
    await this.health.insert({ deviceId, receivedAt: now, report }, this.settings.historyPerDevice);
    if (report.firmware) await this.#inventory(deviceId, report.firmware);
    if (report.posture) await this.#posture(deviceId, now, report.posture);
    this.deps.onReport?.(deviceId, report);
    if (report.restartLoop) {
      this.deps.log.warn({ deviceId, recentRestarts: report.recentRestarts, restartReason: report.restartReason }, 'device reports a restart loop');
      this.deps.onRestartLoop?.(deviceId);
    }
    return 'stored';
  }

  /** The registry follows what the device runs; a failure to write it never costs the report. */
  async #inventory(deviceId: string, fw: NonNullable<HealthReport['firmware']>): Promise<void> {
    try {
      const before = await this.deps.recordFirmware?.(deviceId, fw);
      if (before) this.deps.log.info({ deviceId, from: before, to: fw }, 'device reports other firmware than the registry had; registry updated');
    } catch (err) {
      this.deps.log.warn({ err, deviceId }, 'could not record the firmware the device reports');
    }
  }

  /**
   * The posture is judged once, when it arrives; the findings are kept with it. A part the report
   * leaves out keeps its last known value (a failed read on the device must not clear a finding).
   */
  async #posture(deviceId: string, at: number, reported: NonNullable<HealthReport['posture']>): Promise<void> {
    const posture = mergePosture((await this.health.posture(deviceId))?.posture ?? null, reported);
    const findings = evaluatePosture(posture);
    await this.health.setPosture({ deviceId, reportedAt: at, posture, findings });
    if (findings.some((f) => f.severity === 'fail')) this.deps.log.warn({ deviceId, findings: findings.map((f) => f.kind) }, 'device reports a failing posture');
    this.deps.onPostureFindings?.(deviceId, findings);
  }

  async view(deviceId: string, limit: number): Promise<HealthView> {
    await this.deps.assertDevice(deviceId);
    const [history, posture] = await Promise.all([this.health.history(deviceId, limit), this.health.posture(deviceId)]);
    const latest = history[0] ?? null;
    return { deviceId, latest, restartLoop: latest?.report.restartLoop === true, history, posture };
  }

  /** A validated event; resolves with the outcome to count. */
  async onEvent(deviceId: string, e: DeviceEvent): Promise<string> {
    const record: EventRecord = { deviceId, id: e.id, type: e.type, ts: e.ts, receivedAt: this.deps.clock.now(), data: e.data ?? null };
    return (await this.events.insert(record)) ? 'stored' : 'duplicate';
  }

  async listEvents(f: EventFilter): Promise<EventRecord[]> {
    await this.deps.assertDevice(f.deviceId);
    return this.events.list(f);
  }

  async sweep(): Promise<void> {
    const before = this.deps.clock.now() - this.settings.retentionDays * 86_400_000;
    await this.health.deleteBefore(before);
    await this.events.deleteBefore(before);
  }
}
