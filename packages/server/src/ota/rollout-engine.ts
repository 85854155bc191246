import type { Clock, IdGen, Logger } from '@bulwark/core';
import { OTA_CANCELLABLE_STATES, OTA_LIMITS, type OtaCancel, type OtaJob, deviceTopics } from '@bulwark/protocol';
import type { HealthRepository } from '../health/index.js';
import type { FirmwareArtifact, Rollout, RolloutDevice, RolloutRepository, RolloutState, WaveCounts } from './ota.js';
import { HEALTH_SAMPLE_SIZE, type HealthSample, failedGate, inWindow, silentAfterMs, waveTally } from './rollout-planner.js';

/** How the platform reaches a device (the MQTT gateway); false when it is not connected here. */
export interface OtaLink {
  isConnected(deviceId: string): boolean;
  publish(deviceId: string, topic: string, message: object): Promise<boolean>;
}

export interface EngineDeps {
  readonly repo: RolloutRepository;
  readonly health: HealthRepository;
  /** When the registry last saw the device connect or disconnect (null when never). */
  readonly lastSeenAt: (deviceId: string) => Promise<number | null>;
  /** Whether the device has a stored reading placed in [sinceMs, untilMs). */
  readonly telemetryBetween: (deviceId: string, sinceMs: number, untilMs: number) => Promise<boolean>;
  readonly link: OtaLink;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly deviceTimeoutMs: number;
  /** Called when a rollout stops or finishes on its own (for the audit log). */
  readonly onStop?: (r: Rollout) => void;
}

/** What one pass over a running rollout sees and changes. */
export interface TickContext {
  rollout: Rollout;
  readonly artifact: FirmwareArtifact;
  readonly now: number;
  counts: WaveCounts[];
}

type Phase = (c: TickContext, d: EngineDeps) => Promise<void>;

const NOTIFY_BATCH = 500;

/** The job message of a notified device (the same whenever it is sent again). */
export function jobMessage(dev: RolloutDevice, artifact: FirmwareArtifact): OtaJob {
  return {
    jobId: dev.jobId ?? '',
    rolloutId: dev.rolloutId,
    artifactId: artifact.id,
    url: `/v1/firmware/${artifact.id}`,
    manifest: artifact.manifest,
    issuedAt: dev.notifiedAt ?? dev.updatedAt,
    attempt: dev.attempts,
  };
}

/** Moves the rollout to `state` with a reason in its history. */
export async function moveRollout(d: EngineDeps, r: Rollout, state: RolloutState, reason: string, actor: string, currentWave = r.currentWave): Promise<Rollout> {
  const at = Math.max(d.clock.now(), r.updatedAt + 1);
  const next: Rollout = { ...r, state, reason: state === 'running' ? null : reason, currentWave, updatedAt: at, history: [...r.history, { at, wave: currentWave, state, actor, reason }] };
  if (!(await d.repo.update(next, r.updatedAt))) {
    const fresh = await d.repo.get(r.id);
    if (!fresh) throw new Error(`rollout ${r.id} vanished`);
    return fresh;
  }
  if (actor === 'system' && (state === 'paused' || state === 'aborted' || state === 'completed')) d.onStop?.(next);
  if (state === 'aborted') await cancelLiveJobs(d, next);
  return next;
}

/** The message that stops a device's job of an aborted rollout. */
export function cancelMessage(dev: RolloutDevice, r: Rollout): OtaCancel {
  return { jobId: dev.jobId ?? '', cancel: true, reason: `rollout aborted: ${r.reason ?? ''}`.slice(0, OTA_LIMITS.cancelReasonMaxLength) };
}

/** After an abort, devices told about the update that have not begun installing are told to stop (connected ones now, the rest when they come back). */
async function cancelLiveJobs(d: EngineDeps, r: Rollout): Promise<void> {
  for (const dev of await d.repo.devices(r.id, { states: ['notified', ...OTA_CANCELLABLE_STATES], limit: 100_000 })) {
    if (dev.jobId && d.link.isConnected(dev.deviceId)) await d.link.publish(dev.deviceId, deviceTopics(dev.deviceId).otaJob, cancelMessage(dev, r));
  }
}

/** A device that said nothing for deviceTimeoutMs during an update: a failed attempt. */
const expireStale: Phase = async (c, d) => {
  for (const dev of await d.repo.stale(c.rollout.id, c.now - d.deviceTimeoutMs, NOTIFY_BATCH)) {
    const retry = dev.attempts <= c.rollout.maxRetries;
    await d.repo.updateDevice({ ...dev, state: retry ? 'pending' : 'failed', jobId: retry ? null : dev.jobId, reason: 'timeout', updatedAt: c.now }, [dev.state], dev.jobId);
  }
  c.counts = await d.repo.counts(c.rollout.id);
};

/** How the silence gate looks at one side: updated devices from their commit, the rest from the start of the wave. */
interface SilenceRule {
  readonly updated: boolean;
  /** Heard after this: not silent. */
  readonly quietSince: number;
  readonly waveStart: number;
  /** silentAfterMs: also how far before its floor a device must have sent telemetry to be judged on it. */
  readonly windowMs: number;
  readonly silence: boolean;
  readonly telemetry: boolean;
}

/**
 * Whether a device went silent: heard at or after its floor (an updated device's commit, which
 * is itself a message; for the rest the start of the wave, so that devices gone for weeks do
 * not raise the baseline) and not since quietSince. Undefined when it cannot be judged. The
 * registry is read only when the latest health report does not already settle it.
 */
async function wentSilent(d: EngineDeps, dev: RolloutDevice, reportedAt: number | null, rule: SilenceRule): Promise<boolean | undefined> {
  if (rule.updated && dev.updatedAt > rule.quietSince) return undefined;
  const floor = rule.updated ? dev.updatedAt : rule.waveStart;
  let heard = Math.max(reportedAt ?? -Infinity, rule.updated ? dev.updatedAt : -Infinity);
  if (heard <= rule.quietSince || heard < floor) heard = Math.max(heard, (await d.lastSeenAt(dev.deviceId)) ?? -Infinity);
  return heard < floor ? undefined : heard <= rule.quietSince;
}

/**
 * Whether a device's telemetry stopped: it sent readings in the silentAfterMs before its floor
 * (its commit; for the rest the start of the wave) and none since quietSince. Undefined for a
 * device that sent none before (it is not a telemetry sender) or was updated too recently.
 */
async function telemetryStopped(d: EngineDeps, dev: RolloutDevice, rule: SilenceRule): Promise<boolean | undefined> {
  if (rule.updated && dev.updatedAt > rule.quietSince) return undefined;
  const floor = rule.updated ? dev.updatedAt : rule.waveStart;
  if (!(await d.telemetryBetween(dev.deviceId, floor - rule.windowMs, floor))) return undefined;
  return !(await d.telemetryBetween(dev.deviceId, rule.quietSince, Number.MAX_SAFE_INTEGER));
}

async function sample(d: EngineDeps, devices: readonly RolloutDevice[], rule?: SilenceRule): Promise<HealthSample> {
  let gapJudged = 0;
  let gapped = 0;
  let loops = 0;
  let crashes = 0;
  let reconnects = 0;
  let seen = 0;
  let judged = 0;
  let silent = 0;
  for (const dev of devices) {
    const [latest] = await d.health.history(dev.deviceId, 1);
    const quiet = rule?.silence ? await wentSilent(d, dev, latest?.receivedAt ?? null, rule) : undefined;
    if (quiet !== undefined) [judged, silent] = [judged + 1, silent + (quiet ? 1 : 0)];
    const stopped = rule?.telemetry ? await telemetryStopped(d, dev, rule) : undefined;
    if (stopped !== undefined) [gapJudged, gapped] = [gapJudged + 1, gapped + (stopped ? 1 : 0)];
    if (!latest) continue;
    seen += 1;
    if (latest.report.restartLoop) loops += 1;
    crashes += latest.report.crashCount ?? 0;
    reconnects += latest.report.reconnects ?? 0;
  }
  const mean = (n: number) => (seen === 0 ? 0 : n / seen);
  return {
    devices: seen,
    restartLoops: loops,
    meanCrashes: mean(crashes),
    meanReconnects: mean(reconnects),
    ...(rule?.silence ? { silence: { judged, silent } } : {}),
    ...(rule?.telemetry ? { telemetryGaps: { judged: gapJudged, silent: gapped } } : {}),
  };
}

/** Gates of the current wave (its updated devices' health against devices not yet updated); a failing one pauses or aborts the rollout. */
const judgeGates: Phase = async (c, d) => {
  const r = c.rollout;
  // An operator who resumed after a gate paused this wave has accepted what the gate saw.
  const prior = (i: number) => r.history[i - 1];
  if (r.history.some((e, i) => e.wave === r.currentWave && e.state === 'running' && e.actor !== 'system' && prior(i)?.state === 'paused' && prior(i)?.actor === 'system')) return;
  const g = r.gates;
  const wantsSilence = g.maxSilentExcessPercent !== undefined;
  const wantsGaps = g.maxTelemetryGapExcessPercent !== undefined;
  const wantsHealth = wantsSilence || wantsGaps || g.maxRestartLoopExcessPercent !== undefined || g.maxCrashRatio !== undefined || g.maxReconnectRatio !== undefined;
  const quietSince = c.now - silentAfterMs(g);
  const waveStart = r.history.find((e) => e.wave === r.currentWave)?.at ?? r.createdAt;
  const rule = (updated: boolean): SilenceRule | undefined => (wantsSilence || wantsGaps ? { updated, quietSince, waveStart, windowMs: silentAfterMs(g), silence: wantsSilence, telemetry: wantsGaps } : undefined);
  const updated = wantsHealth ? await sample(d, await d.repo.devices(r.id, { wave: r.currentWave, states: ['committed'], limit: HEALTH_SAMPLE_SIZE }), rule(true)) : undefined;
  const rest = wantsHealth ? await sample(d, await d.repo.devices(r.id, { states: ['pending'], limit: HEALTH_SAMPLE_SIZE }), rule(false)) : undefined;
  const failed = failedGate(g, waveTally(c.counts, r.currentWave), updated, rest);
  if (failed === undefined) return;
  d.log.warn({ rolloutId: r.id, wave: r.currentWave, gate: failed }, `rollout gate failed: ${g.onFailure}`);
  c.rollout = await moveRollout(d, r, g.onFailure === 'abort' ? 'aborted' : 'paused', `wave ${r.currentWave + 1}: ${failed}`, 'system');
};

/**
 * A finished wave whose gates held opens the next one; after the last, the rollout is complete.
 * With the silence gate, the wave is held until its last updated device has had silentAfterMs
 * to go quiet, so that the gate has judged every one of them.
 */
const advanceWave: Phase = async (c, d) => {
  const r = c.rollout;
  const t = waveTally(c.counts, r.currentWave);
  if (t.finished < t.total) return;
  if ((r.gates.maxSilentExcessPercent !== undefined || r.gates.maxTelemetryGapExcessPercent !== undefined) && t.committed > 0) {
    const last = await d.repo.lastCommitAt(r.id, r.currentWave);
    if (last !== null && c.now - last <= silentAfterMs(r.gates)) return;
  }
  if (r.currentWave + 1 < r.waveCount) {
    c.rollout = await moveRollout(d, r, 'running', `wave ${r.currentWave + 2} of ${r.waveCount} started`, 'system', r.currentWave + 1);
  } else {
    const all = c.counts.reduce((a, w) => a + (w.byState.committed ?? 0), 0);
    c.rollout = await moveRollout(d, r, 'completed', `all ${r.waveCount} waves finished; ${all} devices committed`, 'system');
  }
};

/** Sends the job to connected devices of the current wave still pending and not updating in another rollout, inside the maintenance window. */
const notifyWave: Phase = async (c, d) => {
  const r = c.rollout;
  if (!inWindow(r.window, c.now)) return;
  const pending = await d.repo.devices(r.id, { wave: r.currentWave, states: ['pending'], limit: NOTIFY_BATCH });
  const stateOf = new Map<string, Promise<RolloutState | undefined>>();
  const alive = (id: string) =>
    stateOf.get(id) ??
    stateOf
      .set(
        id,
        d.repo.get(id).then((x) => x?.state),
      )
      .get(id)!;
  for (const dev of pending) {
    if (!d.link.isConnected(dev.deviceId)) continue;
    // One update at a time per device: one in another rollout is left to finish first (the device would answer busy).
    // A job of an aborted rollout does not count: it was cancelled, and may never be answered.
    const others = (await d.repo.liveJobs(dev.deviceId)).filter((j) => j.rolloutId !== r.id);
    let busy = false;
    for (const j of others) if ((await alive(j.rolloutId)) !== 'aborted') busy = true;
    if (busy) continue;
    const jobId = d.ids.next('job');
    const next: RolloutDevice = { ...dev, state: 'notified', jobId, attempts: dev.attempts + 1, notifiedAt: c.now, updatedAt: c.now };
    if (!(await d.repo.updateDevice(next, ['pending'], dev.jobId))) continue;
    if (!(await d.link.publish(dev.deviceId, deviceTopics(dev.deviceId).otaJob, jobMessage(next, c.artifact)))) d.log.warn({ deviceId: dev.deviceId, jobId }, 'could not send the OTA job; the device timeout will retry it');
  }
};

/** One pass, phase by phase; a phase that stops the rollout ends the pass. Later waves are only ever reached through advanceWave. */
export const PHASES: readonly (readonly [string, Phase])[] = [
  ['expireStale', expireStale],
  ['judgeGates', judgeGates],
  ['advanceWave', advanceWave],
  ['notifyWave', notifyWave],
];

export async function runPhases(c: TickContext, d: EngineDeps): Promise<Rollout> {
  for (const [, phase] of PHASES) {
    if (c.rollout.state !== 'running') break;
    await phase(c, d);
  }
  return c.rollout;
}
