import type { Logger } from '@bulwark/core';
import { type CommandResult, DEVICE_MESSAGE_LIMITS, type DeviceEvent, ENVELOPE_LIMITS, jsonTextDepth, type HealthReport, type LogBatch, OTA_LIMITS, OTA_STATES, type OtaStatus, type TwinReported } from '@bulwark/protocol';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Counter, type Registry } from 'prom-client';
import type { CommandService, LogStreams } from '../diagnostics/index.js';
import type { HealthService } from '../health/index.js';
import type { TwinService } from '../twin/index.js';

/**
 * The device-to-cloud messages beside telemetry (twin/reported, commands/{name}/result,
 * health, events, logs), for any transport: decode the JSON, check it against the contract
 * in @bulwark/protocol, hand it to its context, count the outcome. A message that fails the
 * contract is answered with a reason (on the device's errors topic) and counted, never thrown.
 */
export interface DeviceInbox {
  /**
   * Undefined when `suffix` (the topic after `devices/{id}/`) is not a topic the inbox handles.
   * `meta.correlationId` is the MQTT 5 correlation data the device echoed: a command result
   * without an `id` takes it as its id.
   */
  receive(deviceId: string, suffix: string, payload: Buffer, meta?: { readonly correlationId?: string }): Promise<InboxRefusal | undefined> | undefined;
  /** The device subscribed (or reconnected with a session): send it what waits for it. */
  subscribed(deviceId: string, filters: readonly string[]): void;
}

export interface InboxRefusal {
  readonly reason: string;
  readonly problems: readonly string[];
}

const obj = (properties: Record<string, object>, required: string[], extra = false) => ({ type: 'object', properties, required, additionalProperties: extra });
const int = { type: 'integer', minimum: 0 };
const num = { type: 'number' };
const str = (maxLength: number) => ({ type: 'string', maxLength });
const record = { type: 'object' };

const SCHEMAS = {
  twin_reported: obj({ version: int, status: { enum: ['applied', 'rejected'] }, config: record, reason: str(256), detail: str(4096), ts: num }, ['version', 'status', 'config', 'ts']),
  command_result: obj({
    id: { anyOf: [{ type: 'string', minLength: 1, maxLength: DEVICE_MESSAGE_LIMITS.commandIdMaxLength }, { type: 'null' }] },
    status: { enum: ['accepted', 'succeeded', 'failed', 'rejected'] }, reason: str(256), detail: str(4096), output: {}, ts: num,
  }, ['id', 'status', 'ts']),
  health: obj({
    ts: num, boot: str(64), uptimeS: { type: 'number', minimum: 0 }, cpuLoad1: { type: 'number', minimum: 0 }, memUsedBytes: int, memTotalBytes: int, diskFreeBytes: int,
    batteryPct: { type: 'number', minimum: 0, maximum: 100 }, restartReason: str(256), crashCount: int, recentRestarts: int, restartLoop: { type: 'boolean' },
    queueDepth: int, reconnects: int, firmware: obj({ version: str(64), securityVersion: int }, ['version']),
  }, ['ts', 'boot', 'uptimeS']),
  events: obj({ id: { type: 'string', minLength: 1, maxLength: DEVICE_MESSAGE_LIMITS.eventIdMaxLength }, type: { type: 'string', minLength: 1, maxLength: DEVICE_MESSAGE_LIMITS.eventTypeMaxLength }, ts: num, data: record }, ['id', 'type', 'ts']),
  logs: obj({
    entries: {
      type: 'array', maxItems: DEVICE_MESSAGE_LIMITS.logBatchMaxEntries,
      items: obj({ ts: num, level: { enum: ['trace', 'debug', 'info', 'warn', 'error'] }, msg: str(DEVICE_MESSAGE_LIMITS.logMessageMaxLength), data: record }, ['ts', 'level', 'msg']),
    },
    dropped: int,
  }, ['entries']),
  ota_status: obj({
    jobId: { type: 'string', minLength: 1, maxLength: OTA_LIMITS.jobIdMaxLength }, state: { enum: [...OTA_STATES] }, ts: num, bytes: int, reason: str(256), detail: str(2048),
    firmware: obj({ version: str(64), securityVersion: int }, ['version']),
  }, ['jobId', 'state', 'ts']),
} as const;

type Kind = keyof typeof SCHEMAS;

/** Largest payload accepted per kind, before it is parsed. */
const MAX_BYTES: Readonly<Record<Kind, number>> = {
  twin_reported: DEVICE_MESSAGE_LIMITS.twinMaxBytes + 4096,
  command_result: DEVICE_MESSAGE_LIMITS.commandMaxBytes,
  health: DEVICE_MESSAGE_LIMITS.healthMaxBytes,
  events: DEVICE_MESSAGE_LIMITS.eventMaxBytes,
  logs: 256 * 1024,
  ota_status: OTA_LIMITS.statusMaxBytes,
};

const COMMAND_RESULT = /^commands\/([^/]+)\/result$/;

function kindOf(suffix: string): { kind: Kind; name?: string } | undefined {
  if (suffix === 'twin/reported') return { kind: 'twin_reported' };
  if (suffix === 'health' || suffix === 'events' || suffix === 'logs') return { kind: suffix };
  if (suffix === 'ota/status') return { kind: 'ota_status' };
  const m = COMMAND_RESULT.exec(suffix);
  return m?.[1] ? { kind: 'command_result', name: m[1] } : undefined;
}

const problemsOf = (errors: ErrorObject[] | null | undefined) => (errors ?? []).slice(0, 10).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);

/** Does the MQTT filter match the topic? */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

export interface InboxServices {
  readonly twin: TwinService;
  readonly commands: CommandService;
  readonly logs: LogStreams;
  readonly health: HealthService;
  /** Device update reports (issue 6); without it they are counted as unsupported. */
  readonly ota?: { onStatus(deviceId: string, s: OtaStatus): Promise<string>; redeliver(deviceId: string): Promise<number> };
}

export function createDeviceInbox(s: InboxServices, deps: { log: Logger; metrics: Registry }): DeviceInbox {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validators = Object.fromEntries(Object.entries(SCHEMAS).map(([k, schema]) => [k, ajv.compile(schema)])) as Record<Kind, ValidateFunction>;
  const messages = new Counter({
    name: 'bulwark_device_messages_total', help: 'Device messages beside telemetry (twin_reported, command_result, health, events, logs, ota_status), by outcome',
    labelNames: ['kind', 'result'] as const, registers: [deps.metrics],
  });
  const handle = (deviceId: string, kind: Kind, name: string | undefined, m: unknown): Promise<string> | string => {
    switch (kind) {
      case 'twin_reported': return s.twin.onReported(deviceId, m as TwinReported);
      case 'command_result': return s.commands.onResult(deviceId, name ?? '', m as CommandResult);
      case 'health': return s.health.onReport(deviceId, m as HealthReport);
      case 'events': return s.health.onEvent(deviceId, m as DeviceEvent);
      case 'logs': return s.logs.onBatch(deviceId, m as LogBatch);
      case 'ota_status': return s.ota ? s.ota.onStatus(deviceId, m as OtaStatus) : 'unsupported';
    }
  };
  const refuse = (deviceId: string, kind: Kind, reason: string, problems: string[]): InboxRefusal => {
    messages.inc({ kind, result: reason });
    deps.log.warn({ deviceId, kind, reason, problems }, 'device message refused');
    return { reason, problems };
  };
  return {
    receive(deviceId, suffix, payload, meta) {
      const k = kindOf(suffix);
      if (!k) return undefined;
      const { kind, name } = k;
      return (async () => {
        if (payload.length > MAX_BYTES[kind]) return refuse(deviceId, kind, 'too_large', [`${payload.length} bytes; at most ${MAX_BYTES[kind]}`]);
        const text = payload.toString('utf8');
        // Counted before parsing, without recursion: storing or streaming a deeper value would overflow the stack.
        if (jsonTextDepth(text, ENVELOPE_LIMITS.maxDepth) > ENVELOPE_LIMITS.maxDepth) return refuse(deviceId, kind, 'too_deep', [`nested deeper than ${ENVELOPE_LIMITS.maxDepth} levels`]);
        let message: unknown;
        try {
          message = JSON.parse(text);
        } catch (err) {
          return refuse(deviceId, kind, 'malformed_json', [(err as Error).message]);
        }
        if (kind === 'command_result' && meta?.correlationId !== undefined && message !== null && typeof message === 'object' && !Array.isArray(message)) {
          const m = message as { id?: unknown };
          if (m.id === undefined) m.id = meta.correlationId;
          else if (m.id !== meta.correlationId) return refuse(deviceId, kind, 'correlation_mismatch', [`id ${JSON.stringify(m.id)} differs from the correlation data ${JSON.stringify(meta.correlationId)}`]);
        }
        const validate = validators[kind];
        if (!validate(message)) return refuse(deviceId, kind, 'invalid', problemsOf(validate.errors));
        messages.inc({ kind, result: await handle(deviceId, kind, name, message) });
        return undefined;
      })();
    },
    subscribed(deviceId, filters) {
      const root = `devices/${deviceId}/`;
      const wants = (topic: string) => filters.some((f) => filterMatches(f, root + topic));
      const fail = (what: string) => (err: unknown) => deps.log.error({ err, deviceId }, `could not deliver ${what}`);
      if (wants('twin/desired')) void s.twin.deliver(deviceId).catch(fail('the desired configuration'));
      if (s.ota && wants('ota/job')) void s.ota.redeliver(deviceId).catch(fail('open update jobs'));
      if (filters.some((f) => filterMatches(f, `${root}commands/x`) || f.startsWith(`${root}commands/`))) {
        void s.commands.deliverOpen(deviceId, (topic) => filters.some((f) => filterMatches(f, topic))).catch(fail('waiting commands'));
      }
    },
  };
}
