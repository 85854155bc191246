/**
 * The API's bodies as the dashboard reads them: aliases over api-schema.d.ts, which
 * `npm run docs:gen` generates from the server's OpenAPI document, so a field the server
 * stops sending fails the dashboard's typecheck instead of showing as blank. A job's state and
 * its devices' are plain strings in the document; Job and JobDevice narrow them to the states the
 * server's jobs context defines, and the pages that load them say so with `as`.
 */
import type { Get, Row } from './api-paths';

/** Replaces `T`'s fields named in `N` with `N`'s types. */
type Narrow<T, N> = Omit<T, keyof N> & N;

/** 100 less a penalty per open alert (critical 40, warning 15, info 5): `healthScore`. */
export type Device = Get<'/api/v1/devices/{id}'>;

/** GET /devices/stats: every dimension but state leaves decommissioned devices out. */
export type FleetCounts = Get<'/api/v1/devices/stats'>;

/** A model or firmware version with its device count; `value` null: devices with none recorded. */
export type ValueCount = Row<FleetCounts['byModel']>;

/** `caId`: the CA that issued it, `issuing` (the platform's CA) or a registered manufacturer CA. */
export type Certificate = Row<Get<'/api/v1/devices/{id}/certificates'>>;

/** GET /certificates/expiring: a device's newest live certificate, with its time left (`msLeft`, negative once ended) as the server counts it. */
export type ExpiringCertificate = Row<Get<'/api/v1/certificates/expiring'>>;

export type Twin = Get<'/api/v1/devices/{id}/twin'>;

/** `payload` as received; sealed parts show as `***` unless the letter was read with decrypt=true. */
export type DeadLetter = Row<Get<'/api/v1/dead-letters'>>;

export type SchemaVersion = Get<'/api/v1/schemas/{name}/versions/{version}'>;

export type AuditEntry = Row<Get<'/api/v1/audit'>>;

/** One reading of the live telemetry stream (an SSE event, which the OpenAPI document does not describe). */
export interface LiveReading {
  readonly deviceId: string;
  readonly msgId: string;
  readonly schemaId: string;
  readonly ts: number;
  readonly receivedAt: number;
  readonly deviceTs: number | null;
  readonly data: Record<string, unknown>;
}

export const DEAD_LETTER_REASONS = ['invalid_utf8', 'malformed_json', 'malformed_cbor', 'too_deep', 'forbidden_key', 'forbidden_character', 'bad_envelope', 'unknown_schema', 'schema_violation'] as const;

/** `state`: firing, acknowledged or resolved; `silenced`: a silence matched when it fired, or it was flapping (stored and shown, not notified); `runbook`: `<alerts.runbookBaseUrl>/<type>.md`. */
export type Alert = Row<Get<'/api/v1/alerts'>>;

export type AlertRule = Row<Get<'/api/v1/alerts/rules'>>;

/** `alerts`: alerts it gathered so far. */
export type Incident = Row<Get<'/api/v1/alerts/incidents'>>;

export type Silence = Row<Get<'/api/v1/alerts/silences'>>;

export type JobState = 'running' | 'paused' | 'cancelled' | 'aborted' | 'completed';
export const JOB_STATES: readonly JobState[] = ['running', 'paused', 'cancelled', 'aborted', 'completed'];
export type JobDeviceState = 'queued' | 'in_progress' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

type JobBody = Get<'/api/v1/jobs/{id}'>;

/** What a job does to each device of its group. */
export type JobOperation = JobBody['operation'];

/** GET /jobs/{id}: a job over a snapshot of a group's members, with its summary; `settledAt` null until it ended and its last dispatched device answered. */
export type Job = Narrow<JobBody, { readonly state: JobState; readonly reasons: readonly Narrow<Row<JobBody['reasons']>, { readonly state: JobDeviceState }>[] }>;

export type JobDevice = Narrow<Row<Get<'/api/v1/jobs/{id}/devices'>>, { readonly state: JobDeviceState }>;
