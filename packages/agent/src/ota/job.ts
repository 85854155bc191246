import { type OtaCancel, type OtaJob, OTA_LIMITS } from '@bulwark/protocol';
import { type Checked, parseBounded } from '../validator.js';

/** A job is small: the manifest holds two signed documents of a few keys each. */
export const JOB_MAX_BYTES = 64 * 1024;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
const ARTIFACT_ID = /^[A-Za-z0-9_]{1,64}$/;
const FIELDS = new Set(['jobId', 'rolloutId', 'artifactId', 'url', 'manifest', 'issuedAt', 'attempt']);

export type JobMessage = { readonly kind: 'job'; readonly job: OtaJob } | { readonly kind: 'cancel'; readonly cancel: OtaCancel };

/**
 * Checks the shape of a message on `devices/{id}/ota/job`: a job, or the cancel of one.
 * The manifest itself is judged by the firmware verifier; the download path must be the
 * device listener's path for the named artifact, so a job can never point the device at
 * another server or file.
 */
export function checkJobMessage(payload: Buffer): Checked<JobMessage> {
  const parsed = parseBounded(payload, JOB_MAX_BYTES);
  if (!parsed.ok) return parsed;
  const m = parsed.value as Record<string, unknown> | null;
  if (m && typeof m === 'object' && !Array.isArray(m) && 'cancel' in m) {
    const id = typeof m.jobId === 'string' && m.jobId.length <= OTA_LIMITS.jobIdMaxLength && ID.test(m.jobId) ? m.jobId : null;
    const bad = Object.keys(m).some((k) => k !== 'jobId' && k !== 'cancel' && k !== 'reason');
    if (!id || m.cancel !== true || bad || typeof m.reason !== 'string' || m.reason.length > OTA_LIMITS.cancelReasonMaxLength) {
      return { ok: false, id: null, reason: 'malformed_job', detail: 'a cancel is {jobId, cancel: true, reason}' };
    }
    return { ok: true, value: { kind: 'cancel', cancel: m as unknown as OtaCancel } };
  }
  const job = checkJob(parsed.value);
  return job.ok ? { ok: true, value: { kind: 'job', job: job.value } } : job;
}

function checkJob(value: unknown): Checked<OtaJob> {
  const j = value as Record<string, unknown>;
  const bad = (detail: string): Checked<OtaJob> => ({ ok: false, id: typeof j?.jobId === 'string' && j.jobId.length <= OTA_LIMITS.jobIdMaxLength && ID.test(j.jobId) ? j.jobId : null, reason: 'malformed_job', detail });
  if (!j || typeof j !== 'object' || Array.isArray(j)) return bad('a job is a JSON object');
  const extra = Object.keys(j).filter((k) => !FIELDS.has(k));
  if (extra.length > 0) return bad(`unknown fields: ${extra.join(', ')}`);
  if (typeof j.jobId !== 'string' || j.jobId.length > OTA_LIMITS.jobIdMaxLength || !ID.test(j.jobId)) return bad(`jobId must be 1-${OTA_LIMITS.jobIdMaxLength} letters, digits, "_", ".", ":" or "-"`);
  if (typeof j.rolloutId !== 'string' || j.rolloutId.length > 64 || !ID.test(j.rolloutId)) return bad('rolloutId must be an id');
  if (typeof j.artifactId !== 'string' || !ARTIFACT_ID.test(j.artifactId)) return bad('artifactId must be 1-64 letters, digits or "_"');
  if (j.url !== `/v1/firmware/${j.artifactId}`) return bad(`url must be /v1/firmware/${j.artifactId}`);
  if (!Number.isSafeInteger(j.issuedAt) || (j.issuedAt as number) < 0) return bad('issuedAt must be a time in ms');
  if (!Number.isSafeInteger(j.attempt) || (j.attempt as number) < 1) return bad('attempt must be a positive integer');
  if (!j.manifest || typeof j.manifest !== 'object' || Array.isArray(j.manifest)) return bad('manifest must be an object');
  return { ok: true, value: j as unknown as OtaJob };
}
