export interface Device {
  readonly id: string;
  /** 100 less a penalty per open alert (critical 40, warning 15, info 5). */
  readonly healthScore: number;
  readonly serial: string | null;
  readonly model: string | null;
  readonly hardwareRevision: string | null;
  readonly firmwareVersion: string | null;
  readonly securityVersion: number | null;
  readonly owner: string | null;
  readonly location: string | null;
  readonly tags: string[];
  readonly state: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly connectivity: {
    readonly online: boolean;
    readonly onlineSince: number | null;
    readonly lastSeenAt: number | null;
    readonly connectCount: number;
    readonly lastDisconnectAt: number | null;
    readonly lastDisconnectReason: string | null;
  };
}

export interface ValueCount {
  /** null: devices with none recorded. */
  readonly value: string | null;
  readonly count: number;
}

/** GET /devices/stats: every dimension but state leaves decommissioned devices out. */
export interface FleetCounts {
  readonly total: number;
  readonly byState: Readonly<Record<string, number>>;
  readonly byConnectivity: { readonly online: number; readonly offline: number };
  readonly byHealth: { readonly good: number; readonly fair: number; readonly poor: number };
  readonly byAlertState: { readonly firing: number; readonly acknowledged: number; readonly none: number };
  readonly byModel: ValueCount[];
  readonly byFirmware: ValueCount[];
}

export interface Certificate {
  readonly serial: string;
  readonly deviceId: string;
  /** The CA that issued it: `issuing` (the platform's CA) or a registered manufacturer CA. */
  readonly caId: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly createdAt: number;
  readonly firstUsedAt: number | null;
  readonly supersededAt: number | null;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

/** GET /certificates/expiring: a device's newest live certificate, with its time left as the server counts it. */
export interface ExpiringCertificate extends Certificate {
  readonly expired: boolean;
  /** Until its end, from the server's clock when it answered; negative once ended. */
  readonly msLeft: number;
}

export interface Twin {
  readonly deviceId: string;
  readonly desired: { version: number; config: Record<string, unknown>; updatedAt: number; updatedBy: string } | null;
  readonly reported: { version: number; status: string; config: Record<string, unknown>; reason: string | null; receivedAt: number } | null;
  readonly drifted?: boolean;
  readonly driftSince?: number | null;
}

export interface DeadLetter {
  readonly id: string;
  readonly deviceId: string;
  readonly transport: string;
  readonly topic: string | null;
  readonly receivedAt: number;
  readonly reason: string;
  readonly problems: { path?: string; message?: string; expected?: string; got?: string }[];
  readonly schemaId: string | null;
  readonly msgId: string | null;
  /** As received; sealed parts show as `***` unless the letter was read with decrypt=true. */
  readonly payload: string;
  readonly replayedAt: number | null;
  readonly replayResult: string | null;
  /** How it is kept at rest: `whole` (no usable schema), `fields` (the schema's x-sensitive fields), `none` (stored in clear by an older version). */
  readonly protection: 'whole' | 'fields' | 'none';
  readonly sealedFields: readonly string[];
  readonly revealed: boolean;
  readonly decryptError?: string;
}

export interface SchemaVersion {
  readonly name: string;
  readonly version: number;
  readonly document: Record<string, unknown>;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface AuditEntry {
  readonly seq: number;
  readonly at?: number;
  readonly ts?: number;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly result: string;
  readonly details?: Record<string, unknown> | null;
}

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

export type AlertState = 'firing' | 'acknowledged' | 'resolved';

export interface Alert {
  readonly id: string;
  readonly ruleId: string;
  readonly deviceId: string;
  /** The rule's kind when it fired: threshold, rate, absence, anomaly, offline (the runbook's name). */
  readonly type: string;
  readonly severity: string;
  readonly state: AlertState;
  readonly summary: string;
  readonly details: Record<string, unknown>;
  readonly firedAt: number;
  readonly acknowledgedAt: number | null;
  readonly acknowledgedBy: string | null;
  readonly resolvedAt: number | null;
  /** A silence matched when it fired, or it was flapping: stored and shown, not notified. */
  readonly silenced: boolean;
  readonly incidentId: string | null;
  /** `<alerts.runbookBaseUrl>/<type>.md`: a URL, or a path in the repository by default. */
  readonly runbook: string;
}

export interface AlertRule {
  readonly id: string;
  readonly name: string;
  readonly severity: string;
  readonly scope: { deviceIds: string[]; tags: string[]; models: string[]; groups?: string[]; schemas: string[] };
  /** As people write it: durations as text (`{kind: 'threshold', field, op, value, for: '5m', hysteresis}`). */
  readonly condition: { kind: string; [key: string]: unknown };
  readonly enabled: boolean;
  readonly builtIn: boolean;
}

export interface Incident {
  readonly id: string;
  readonly ruleId: string;
  readonly openedAt: number;
  readonly closedAt: number | null;
  /** Alerts it gathered so far. */
  readonly alerts: number;
}

export interface Silence {
  readonly id: string;
  readonly ruleId: string | null;
  readonly deviceId: string | null;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export type JobState = 'running' | 'paused' | 'cancelled' | 'aborted' | 'completed';
export const JOB_STATES: readonly JobState[] = ['running', 'paused', 'cancelled', 'aborted', 'completed'];
export type JobDeviceState = 'queued' | 'in_progress' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

/** What a job does to each device of its group. */
export type JobOperation =
  | { readonly type: 'twin-patch'; readonly patch: Record<string, unknown> }
  | { readonly type: 'command'; readonly name: string; readonly params: Record<string, unknown>; readonly ttlS?: number }
  | { readonly type: 'rotate-certificate' }
  | { readonly type: 'suspend' }
  | { readonly type: 'resume' }
  | { readonly type: 'decommission' };

/** GET /jobs/{id}: a job over a snapshot of a group's members, with its summary. */
export interface Job {
  readonly id: string;
  readonly name: string;
  readonly operation: JobOperation;
  readonly group: string;
  readonly pacing: { readonly ratePerSecond: number; readonly maxConcurrent: number; readonly window: { startMinute: number; endMinute: number } | null };
  readonly deviceTimeoutMs: number;
  readonly maxRetries: number;
  readonly abort: { readonly failedPercent: number; readonly minFinished: number } | null;
  readonly state: JobState;
  /** Why it is paused, cancelled, aborted or completed. */
  readonly reason: string | null;
  readonly deviceCount: number;
  /** Members left out when the job was made, by why (e.g. decommissioned). */
  readonly skipped: Readonly<Record<string, number>>;
  readonly history: { at: number; state: string; actor: string; reason: string }[];
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When it ended and its last dispatched device answered or timed out; null before (the page refreshes until then). */
  readonly settledAt: number | null;
  readonly counts: Readonly<Record<JobDeviceState, number>>;
  readonly progress: { readonly finished: number; readonly total: number; readonly percent: number };
  /** Devices that failed, timed out or were cancelled, by reason, most first. */
  readonly reasons: { state: JobDeviceState; reason: string; count: number }[];
}

export interface JobDevice {
  readonly deviceId: string;
  readonly state: JobDeviceState;
  readonly attempts: number;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly dispatchedAt: number | null;
  readonly finishedAt: number | null;
  readonly updatedAt: number;
}
