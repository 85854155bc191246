import Type, { type Static } from 'typebox';
import { DevicePosture } from './device-posture.js';

/**
 * The device messages beside telemetry (DESIGN.md §4): commands, twin, health, events and
 * logs. JSON on the wire. Each schema is the one definition of its message: the platform
 * validates against it, the agent builds and reads the types derived from it, and
 * docs/reference/topics.md is generated from it.
 */

export const DEVICE_MESSAGE_LIMITS = {
  commandIdMaxLength: 64,
  commandNameMaxLength: 64,
  /** Command and desired-configuration documents larger than this are refused unread. */
  commandMaxBytes: 16 * 1024,
  twinMaxBytes: 16 * 1024,
  /** A twin report carries the configuration (at most twinMaxBytes) and a few fields about it. */
  twinReportedMaxBytes: 16 * 1024 + 4096,
  healthMaxBytes: 4 * 1024,
  eventMaxBytes: 16 * 1024,
  eventIdMaxLength: 128,
  eventTypeMaxLength: 64,
  logBatchMaxBytes: 256 * 1024,
  logBatchMaxEntries: 200,
  logMessageMaxLength: 2048,
  logStreamMaxDurationS: 3600,
  /** `reason` of a refusal or failure: a stable machine-readable word. */
  reasonMaxLength: 256,
  detailMaxLength: 4096,
} as const;

/** A command name: one topic level, no wildcards. */
export const COMMAND_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Built-in command names every agent understands. */
export const BUILTIN_COMMANDS = {
  /** `{ "level": LogLevel, "durationS": 1..3600, "sample"?: 0<..1 (default 1) }`: stream logs for a bounded time. */
  logsStream: 'logs.stream',
  /** `{}`: stop streaming logs now. */
  logsStop: 'logs.stop',
  /** `{}`: renew the device certificate now (new key, CSR on `certs/rotate`); the result carries the new serial once it is in use. */
  certsRenew: 'certs.renew',
} as const;

const L = DEVICE_MESSAGE_LIMITS;
const closed = (description: string) => ({ additionalProperties: false, description }) as const;
const count = (description: string) => Type.Integer({ minimum: 0, description });
const jsonObject = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });
const reason = (description: string) => Type.Optional(Type.String({ maxLength: L.reasonMaxLength, description }));

/** Firmware the device runs now; in health reports and terminal update statuses. */
export const RunningFirmware = Type.Object(
  {
    version: Type.String({ maxLength: 64, description: 'Release version (semver).' }),
    securityVersion: Type.Optional(count('Anti-rollback counter of the release.')),
  },
  closed('The firmware that runs now.'),
);

export const CommandRequest = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: L.commandIdMaxLength, pattern: '^[^\\u0000-\\u001F]+$', description: 'Unique per command: a device that sees the same id twice answers the same way and does not run the handler again.' }),
    params: jsonObject('Parameters, checked against the JSON Schema the device registered for the command name.'),
    issuedAt: Type.Number({ description: 'Platform time the command was issued, ms since the epoch.' }),
    expiresAt: Type.Optional(Type.Number({ description: 'Platform time after which the command must not run (judged on the device clock once synced).' })),
  },
  closed('A command for the device. It never runs twice for one id, and not after expiresAt.'),
);
export type CommandRequest = Static<typeof CommandRequest>;

/** How a command ended on the device. `rejected` means it never ran (validation, unknown name, expired). */
export const CommandStatus = Type.Enum(['accepted', 'succeeded', 'failed', 'rejected'], { description: '`rejected`: it never ran (validation, unknown name, expired). `succeeded`, `failed` and `rejected` are final.' });
export type CommandStatus = Static<typeof CommandStatus>;

export const CommandResult = Type.Object(
  {
    id: Type.Union([Type.String({ minLength: 1, maxLength: L.commandIdMaxLength }), Type.Null()], { description: "The command's `id`, or `null` when the request was too malformed to carry one. MQTT 5: may be left out when the correlation data carries it." }),
    status: CommandStatus,
    reason: reason('Stable reason for `rejected` / `failed`, e.g. `params_invalid`, `unknown_command`.'),
    detail: Type.Optional(Type.String({ maxLength: L.detailMaxLength, description: 'Human-readable detail: for validation, `path: expected …, got …` lines.' })),
    output: Type.Optional(Type.Unknown({ description: 'What the handler returned.' })),
    ts: Type.Number({ description: 'Device wall clock when the result was sent.' }),
  },
  closed("How a command went on the device; moves the platform's command record."),
);
export type CommandResult = Static<typeof CommandResult>;

export const TwinDesired = Type.Object(
  {
    version: count('Assigned by the platform, +1 per change, never reused. A version at or below the one applied is a repeat.'),
    config: jsonObject('The desired configuration, checked against the schema the device registered.'),
    ts: Type.Number({ description: 'Platform time of the change, ms since the epoch.' }),
  },
  closed('The configuration the operator wants. Sent on every change while connected and again on every subscribe, so versions repeat.'),
);
export type TwinDesired = Static<typeof TwinDesired>;

export const TwinReported = Type.Object(
  {
    version: count('The desired version this report answers (the last one applied, or the one refused); 0 before any desired state exists.'),
    status: Type.Enum(['applied', 'rejected'], { description: 'Whether the device took `version`.' }),
    config: jsonObject('The configuration in effect on the device after this report.'),
    reason: reason('Stable reason for `rejected`, e.g. `config_invalid`.'),
    detail: Type.Optional(Type.String({ maxLength: L.detailMaxLength, description: 'Human-readable detail of a refusal.' })),
    ts: Type.Number({ description: 'Device wall clock.' }),
  },
  closed('What the device runs now, and whether it took the desired version.'),
);
export type TwinReported = Static<typeof TwinReported>;

export const HealthReport = Type.Object(
  {
    ts: Type.Number({ description: 'Device wall clock.' }),
    boot: Type.String({ maxLength: 64, description: 'Boot identifier, as in telemetry.' }),
    uptimeS: Type.Number({ minimum: 0, description: 'Seconds since boot.' }),
    cpuLoad1: Type.Optional(Type.Number({ minimum: 0, description: 'One-minute load average.' })),
    memUsedBytes: Type.Optional(count('Memory in use.')),
    memTotalBytes: Type.Optional(count('Memory in all.')),
    diskFreeBytes: Type.Optional(count('Free space where the agent keeps its data.')),
    batteryPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'Battery charge.' })),
    restartReason: reason('Why the device last started.'),
    crashCount: Type.Optional(count('Crashes since the agent was installed.')),
    recentRestarts: Type.Optional(count("Restarts within the device's restart-loop window.")),
    restartLoop: Type.Optional(Type.Boolean({ description: "True when recentRestarts is past the device's threshold." })),
    queueDepth: Type.Optional(count('Messages waiting in the offline queue.')),
    queueDropped: Type.Optional(count('Readings the offline queue dropped since the agent was installed (full by count or bytes, or too old): a rise means lost data, and fires the platform\'s "agent dropping readings" alert.')),
    reconnects: Type.Optional(count('Reconnections since boot.')),
    firmware: Type.Optional(RunningFirmware),
    posture: Type.Optional(DevicePosture),
  },
  closed('Periodic health. Sources the device cannot read are left out, never guessed.'),
);
export type HealthReport = Static<typeof HealthReport>;

export const DeviceEvent = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: L.eventIdMaxLength, description: 'Unique per device: a retry is stored once.' }),
    type: Type.String({ minLength: 1, maxLength: L.eventTypeMaxLength, description: 'What happened, e.g. `boot`, `crash`, `twin.refused`.' }),
    ts: Type.Number({ description: 'Device wall clock.' }),
    data: Type.Optional(jsonObject('Details of the event.')),
  },
  closed('Boot, crash, state change.'),
);
export type DeviceEvent = Static<typeof DeviceEvent>;

export const LogLevel = Type.Enum(['trace', 'debug', 'info', 'warn', 'error'], { description: 'Severity.' });
export type LogLevel = Static<typeof LogLevel>;

export const LogEntry = Type.Object(
  {
    ts: Type.Number({ description: 'Device wall clock.' }),
    level: LogLevel,
    msg: Type.String({ maxLength: L.logMessageMaxLength, description: 'The message.' }),
    data: Type.Optional(jsonObject('Structured fields of the line.')),
  },
  closed('One log line.'),
);

export const LogBatch = Type.Object(
  {
    entries: Type.Immutable(Type.Array(LogEntry, { maxItems: L.logBatchMaxEntries, description: 'The lines, oldest first.' })),
    dropped: Type.Optional(count('Entries the device dropped by sampling or rate since the last batch.')),
  },
  closed('Log lines, sent only while the operator has turned streaming on (built-in command `logs.stream`).'),
);
export type LogBatch = Static<typeof LogBatch>;
