/**
 * The device-facing OTA messages (DESIGN.md §4): the platform sends a job on
 * `devices/{id}/ota/job` (QoS 1); the device reports every transition of its update state
 * machine on `devices/{id}/ota/status`.
 */
import type { FirmwareManifest } from './firmware.js';

/** The device's update states, in order; the last three are terminal. */
export const OTA_STATES = ['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed', 'rolled-back', 'failed'] as const;
export type OtaState = (typeof OTA_STATES)[number];
export const OTA_TERMINAL_STATES: readonly OtaState[] = ['committed', 'rolled-back', 'failed'];

/** Cloud → device on `devices/{id}/ota/job`. */
export interface OtaJob {
  /** Unique per attempt; every status names it. A device that sees the same id twice does not start twice. */
  readonly jobId: string;
  readonly rolloutId: string;
  readonly artifactId: string;
  /** Path on the device HTTPS listener (mutual TLS) to fetch the image from; supports Range. */
  readonly url: string;
  /** Verify before installing: root-pinned signatures, expiry, hardware, security version, then size and SHA-256. */
  readonly manifest: FirmwareManifest;
  readonly issuedAt: number;
  /** 1 for the first attempt, then one more per retry. */
  readonly attempt: number;
}

/**
 * Cloud → device on `devices/{id}/ota/job` as well: the rollout was aborted. A device that
 * has not begun installing this job stops, drops what it downloaded and reports `failed`
 * with reason `cancelled`; one that is installing or later finishes as if it never came.
 */
export interface OtaCancel {
  readonly jobId: string;
  readonly cancel: true;
  readonly reason: string;
}

/** Device → cloud on `devices/{id}/ota/status`. */
export interface OtaStatus {
  readonly jobId: string;
  readonly state: OtaState;
  /** Device wall clock. */
  readonly ts: number;
  /** While downloading: bytes held so far. */
  readonly bytes?: number;
  /** Stable machine-readable reason for failed / rolled-back, e.g. a FirmwareRefusal or `health_check_failed`. */
  readonly reason?: string;
  readonly detail?: string;
  /** What runs now (after committed: the new release; after rolled-back: the old one). */
  readonly firmware?: { readonly version: string; readonly securityVersion?: number };
}

export const OTA_LIMITS = {
  statusMaxBytes: 4 * 1024,
  jobIdMaxLength: 64,
  cancelReasonMaxLength: 200,
} as const;

/** States in which a cancelled job still stops (nothing of the new image is on a slot yet). */
export const OTA_CANCELLABLE_STATES: readonly OtaState[] = ['queued', 'downloading', 'verifying'];
