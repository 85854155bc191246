import Type, { type Static } from 'typebox';
import type { FirmwareManifest } from '../firmware.js';
import { RunningFirmware } from './device-messages.js';

/**
 * The device-facing OTA messages (DESIGN.md §4): the platform sends a job (or the cancel of
 * one) on `devices/{id}/ota/job`; the device reports every transition of its update state
 * machine on `devices/{id}/ota/status`.
 */

export const OTA_LIMITS = {
  statusMaxBytes: 4 * 1024,
  /** A job is small: the manifest holds two signed documents of a few keys each. */
  jobMaxBytes: 64 * 1024,
  jobIdMaxLength: 64,
  rolloutIdMaxLength: 64,
  cancelReasonMaxLength: 200,
  statusDetailMaxLength: 2048,
} as const;

/** Job and rollout ids: letters, digits, `_`, `.`, `:` or `-`, not starting with a sign. */
export const OTA_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
export const ARTIFACT_ID_PATTERN = /^[A-Za-z0-9_]{1,64}$/;
/** The one download path a job may name, on the device HTTPS listener. */
export const FIRMWARE_URL_PATTERN = /^\/v1\/firmware\/[A-Za-z0-9_]{1,64}$/;

/** The device's update states, in order; the last three are terminal. */
export const OTA_STATES = ['queued', 'downloading', 'verifying', 'installing', 'rebooting', 'verifying-health', 'committed', 'rolled-back', 'failed'] as const;
export const OtaState = Type.Enum(OTA_STATES, { description: 'Update states in order; `committed`, `rolled-back` and `failed` are terminal.' });
export type OtaState = Static<typeof OtaState>;
export const OTA_TERMINAL_STATES: readonly OtaState[] = ['committed', 'rolled-back', 'failed'];
/** States in which a cancelled job still stops (nothing of the new image is on a slot yet). */
export const OTA_CANCELLABLE_STATES: readonly OtaState[] = ['queued', 'downloading', 'verifying'];

const count = (description: string) => Type.Integer({ minimum: 0, description });
const jobId = (description: string) => Type.String({ minLength: 1, maxLength: OTA_LIMITS.jobIdMaxLength, pattern: OTA_ID_PATTERN.source, description });

export const OtaJob = Type.Object(
  {
    jobId: jobId('Unique per attempt; every status names it. A device that sees the same id twice does not start twice.'),
    rolloutId: Type.String({ minLength: 1, maxLength: OTA_LIMITS.rolloutIdMaxLength, pattern: OTA_ID_PATTERN.source, description: 'The rollout the job belongs to.' }),
    artifactId: Type.String({ pattern: ARTIFACT_ID_PATTERN.source, description: 'The firmware artifact to install.' }),
    url: Type.String({ pattern: FIRMWARE_URL_PATTERN.source, description: 'Exactly `/v1/firmware/{artifactId}` on the device HTTPS listener (mutual TLS); supports Range.' }),
    manifest: Type.Unsafe<FirmwareManifest>({ type: 'object', description: 'Signed metadata (FirmwareManifest): verify it before downloading and again before installing.' }),
    issuedAt: count('Platform time the job was issued, ms since the epoch.'),
    attempt: Type.Integer({ minimum: 1, description: '1 for the first attempt, then one more per retry.' }),
  },
  { additionalProperties: false, description: 'Install a firmware release.' },
);
export type OtaJob = Static<typeof OtaJob>;

export const OtaCancel = Type.Object(
  {
    jobId: jobId('The job to cancel.'),
    cancel: Type.Literal(true, { description: 'Marks the message as a cancel.' }),
    reason: Type.String({ maxLength: OTA_LIMITS.cancelReasonMaxLength, description: 'Why the rollout was aborted.' }),
  },
  {
    additionalProperties: false,
    description: 'The rollout was aborted. A device that has not begun installing this job stops, drops what it downloaded and reports `failed` with reason `cancelled`; one that is installing or later finishes as if it never came.',
  },
);
export type OtaCancel = Static<typeof OtaCancel>;

/** What arrives on `devices/{id}/ota/job`: a job, or the cancel of one (it has `cancel: true`). */
export const OtaJobMessage = Type.Union([OtaJob, OtaCancel], { description: 'A job, or the cancel of one (`cancel: true`).' });
export type OtaJobMessage = Static<typeof OtaJobMessage>;

export const OtaStatus = Type.Object(
  {
    jobId: Type.String({ minLength: 1, maxLength: OTA_LIMITS.jobIdMaxLength, description: 'The job this status is about.' }),
    state: OtaState,
    ts: Type.Number({ description: 'Device wall clock.' }),
    bytes: Type.Optional(count('While downloading: bytes held so far.')),
    reason: Type.Optional(Type.String({ maxLength: 256, description: 'Stable reason for `failed` / `rolled-back`, e.g. a FirmwareRefusal or `health_check_failed`.' })),
    detail: Type.Optional(Type.String({ maxLength: OTA_LIMITS.statusDetailMaxLength, description: 'Human-readable detail.' })),
    firmware: Type.Optional(RunningFirmware),
  },
  { additionalProperties: false, description: "A transition of the device's update state machine. Terminal statuses carry `firmware`, what runs now." },
);
export type OtaStatus = Static<typeof OtaStatus>;
