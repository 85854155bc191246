/**
 * The device messages beside telemetry (DESIGN.md §4): commands, twin, health, events and
 * logs. JSON on the wire. The agent (packages/agent) and the platform (packages/server)
 * both build and read these shapes from here, so the contract has one definition.
 */

/**
 * Cloud → device on `devices/{id}/commands/{name}` (QoS 1, not retained).
 * `id` is unique per command; a device that sees the same id twice answers the same way and
 * does not run the handler again. A command past `expiresAt` (device clock, when synced) is refused.
 */
export interface CommandRequest {
  readonly id: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Platform time the command was issued, ms since the epoch. */
  readonly issuedAt: number;
  /** Platform time after which the command must not run, ms since the epoch. */
  readonly expiresAt?: number;
}

/** How a command ended on the device. `rejected` means it never ran (validation, unknown name, expired). */
export type CommandStatus = 'accepted' | 'succeeded' | 'failed' | 'rejected';

/** Device → cloud on `devices/{id}/commands/{name}/result`. */
export interface CommandResult {
  /** The command's `id`, or `null` when the request was too malformed to carry one. */
  readonly id: string | null;
  readonly status: CommandStatus;
  /** Stable machine-readable reason for `rejected` / `failed`, e.g. `params_invalid`, `unknown_command`. */
  readonly reason?: string;
  /** Human-readable detail: for validation, `path: expected …, got …` lines. */
  readonly detail?: string;
  readonly output?: unknown;
  /** Device wall clock when the result was sent. */
  readonly ts: number;
}

/**
 * Cloud → device on `devices/{id}/twin/desired` (QoS 1, not retained). Versions only ever
 * increase. The platform sends the current desired document on every change while the
 * device is connected and again whenever the device subscribes, so a device sees the same
 * version more than once: a version at or below the one it applied is a repeat, not a change.
 */
export interface TwinDesired {
  readonly version: number;
  readonly config: Readonly<Record<string, unknown>>;
  readonly ts: number;
}

/** Device → cloud on `devices/{id}/twin/reported`: what the device runs now, and whether it took `version`. */
export interface TwinReported {
  /** The desired version this report answers (the last one applied, or the one refused); 0 before any desired state exists. */
  readonly version: number;
  readonly status: 'applied' | 'rejected';
  /** The configuration in effect on the device after this report. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly reason?: string;
  readonly detail?: string;
  readonly ts: number;
}

/** Device → cloud on `devices/{id}/health`, periodically. Unknown sources are omitted, never guessed. */
export interface HealthReport {
  readonly ts: number;
  readonly boot: string;
  readonly uptimeS: number;
  readonly cpuLoad1?: number;
  readonly memUsedBytes?: number;
  readonly memTotalBytes?: number;
  readonly diskFreeBytes?: number;
  readonly batteryPct?: number;
  readonly restartReason?: string;
  readonly crashCount?: number;
  /** Restarts within the device's restart-loop window; `restartLoop` when past its threshold. */
  readonly recentRestarts?: number;
  readonly restartLoop?: boolean;
  readonly queueDepth?: number;
  readonly reconnects?: number;
  readonly firmware?: { readonly version: string; readonly securityVersion?: number };
}

/** Device → cloud on `devices/{id}/events`: boot, crash, state changes. */
export interface DeviceEvent {
  readonly id: string;
  readonly type: string;
  readonly ts: number;
  readonly data?: Readonly<Record<string, unknown>>;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Device → cloud on `devices/{id}/logs`, only while the operator has turned streaming on. */
export interface LogBatch {
  readonly entries: readonly { readonly ts: number; readonly level: LogLevel; readonly msg: string; readonly data?: Readonly<Record<string, unknown>> }[];
  /** Entries the device dropped by sampling or rate since the last batch. */
  readonly dropped?: number;
}

/** Built-in command names every agent understands. */
export const BUILTIN_COMMANDS = {
  /** `{ "level": LogLevel, "durationS": 1..3600, "sample"?: 0<..1 (default 1) }`: stream logs for a bounded time. */
  logsStream: 'logs.stream',
  /** `{}`: stop streaming logs now. */
  logsStop: 'logs.stop',
} as const;

export const DEVICE_MESSAGE_LIMITS = {
  commandIdMaxLength: 64,
  commandNameMaxLength: 64,
  /** Command and desired-configuration documents larger than this are refused unread. */
  commandMaxBytes: 16 * 1024,
  twinMaxBytes: 16 * 1024,
  healthMaxBytes: 4 * 1024,
  eventMaxBytes: 16 * 1024,
  eventIdMaxLength: 128,
  eventTypeMaxLength: 64,
  logBatchMaxEntries: 200,
  logMessageMaxLength: 2048,
  logStreamMaxDurationS: 3600,
} as const;

/** A command name: one topic level, no wildcards. */
export const COMMAND_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
