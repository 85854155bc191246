import { ARTIFACT_ID_PATTERN, OTA_ID_PATTERN, OTA_LIMITS, OTA_TERMINAL_STATES, OtaCancel, OtaJob, type OtaStatus, canonicalJson } from '@bulwark/protocol';
import type { JobRecord, OtaPersisted } from './state.js';
import { type Checked, parseBounded } from '../validator.js';

const FIELDS = new Set(Object.keys(OtaJob.properties));
const CANCEL_FIELDS = new Set(Object.keys(OtaCancel.properties));

export type JobMessage = { readonly kind: 'job'; readonly job: OtaJob } | { readonly kind: 'cancel'; readonly cancel: OtaCancel };

/**
 * Checks the shape of a message on `devices/{id}/ota/job`: a job, or the cancel of one.
 * The manifest itself is judged by the firmware verifier; the download path must be the
 * device listener's path for the named artifact, so a job can never point the device at
 * another server or file.
 */
export function checkJobMessage(payload: Buffer): Checked<JobMessage> {
  const parsed = parseBounded(payload, OTA_LIMITS.jobMaxBytes);
  if (!parsed.ok) return parsed;
  const m = parsed.value as Record<string, unknown> | null;
  if (m && typeof m === 'object' && !Array.isArray(m) && 'cancel' in m) {
    const id = typeof m.jobId === 'string' && m.jobId.length <= OTA_LIMITS.jobIdMaxLength && OTA_ID_PATTERN.test(m.jobId) ? m.jobId : null;
    const bad = Object.keys(m).some((k) => !CANCEL_FIELDS.has(k));
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
  const bad = (detail: string): Checked<OtaJob> => ({ ok: false, id: typeof j?.jobId === 'string' && j.jobId.length <= OTA_LIMITS.jobIdMaxLength && OTA_ID_PATTERN.test(j.jobId) ? j.jobId : null, reason: 'malformed_job', detail });
  if (!j || typeof j !== 'object' || Array.isArray(j)) return bad('a job is a JSON object');
  const extra = Object.keys(j).filter((k) => !FIELDS.has(k));
  if (extra.length > 0) return bad(`unknown fields: ${extra.join(', ')}`);
  if (typeof j.jobId !== 'string' || j.jobId.length > OTA_LIMITS.jobIdMaxLength || !OTA_ID_PATTERN.test(j.jobId)) return bad(`jobId must be 1-${OTA_LIMITS.jobIdMaxLength} letters, digits, "_", ".", ":" or "-"`);
  if (typeof j.rolloutId !== 'string' || j.rolloutId.length > OTA_LIMITS.rolloutIdMaxLength || !OTA_ID_PATTERN.test(j.rolloutId)) return bad('rolloutId must be an id');
  if (typeof j.artifactId !== 'string' || !ARTIFACT_ID_PATTERN.test(j.artifactId)) return bad('artifactId must be 1-64 letters, digits or "_"');
  if (j.url !== `/v1/firmware/${j.artifactId}`) return bad(`url must be /v1/firmware/${j.artifactId}`);
  if (!Number.isSafeInteger(j.issuedAt) || (j.issuedAt as number) < 0) return bad('issuedAt must be a time in ms');
  if (!Number.isSafeInteger(j.attempt) || (j.attempt as number) < 1) return bad('attempt must be a positive integer');
  if (!j.manifest || typeof j.manifest !== 'object' || Array.isArray(j.manifest)) return bad('manifest must be an object');
  return { ok: true, value: j as unknown as OtaJob };
}

/**
 * What to do with a job that passed the shape check:
 * - repeat: the job in progress again (answer with its status);
 * - adopt: the platform's retry of the job in progress under a new id, with the very same manifest (carry on under the new id);
 * - busy: another update is in progress;
 * - cancelled: a job cancelled before it arrived;
 * - old: a job this device finished long ago (ignore);
 * - start: a new job.
 */
export type JobDecision = 'repeat' | 'adopt' | 'busy' | 'cancelled' | 'old' | 'start';

export function decideJob(s: OtaPersisted, job: OtaJob): JobDecision {
  const cur = s.job;
  const live = cur !== null && !(OTA_TERMINAL_STATES as readonly string[]).includes(cur.state);
  if (s.recentJobs.includes(job.jobId)) {
    if (cur?.job.jobId === job.jobId) return 'repeat';
    if ((s.cancelled ?? []).includes(job.jobId)) return 'cancelled';
    return live ? 'busy' : 'old';
  }
  if (!live) return 'start';
  return cur.job.artifactId === job.artifactId && sameManifest(cur.job.manifest, job.manifest) ? 'adopt' : 'busy';
}

/** Byte-for-byte the same signed metadata (a retry may not bring other metadata into a job under way). */
function sameManifest(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/** The status of a job as the device reports it; a terminal one names what runs now. */
export function statusOf(rec: JobRecord, running: { readonly version: string; readonly securityVersion: number }, ts: number): OtaStatus {
  const terminal = (OTA_TERMINAL_STATES as readonly string[]).includes(rec.state);
  return {
    jobId: rec.job.jobId,
    state: rec.state,
    ts,
    ...(rec.state === 'downloading' && rec.bytes !== undefined ? { bytes: rec.bytes } : {}),
    ...(rec.reason ? { reason: rec.reason } : {}),
    ...(rec.detail ? { detail: rec.detail.slice(0, 500) } : {}),
    ...(terminal ? { firmware: { version: running.version, securityVersion: running.securityVersion } } : {}),
  };
}
