import type { Logger } from '@bulwark/core';
import { type CommandResult, DEVICE_MESSAGES, DEVICE_TOPICS, type DeviceEvent, type DeviceTopicName, ENVELOPE_LIMITS, type HealthReport, type LogBatch, type OtaStatus, type TwinReported, deviceTopics, jsonTextDepth, matchDeviceTopic } from '@bulwark/protocol';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Counter, type Registry } from 'prom-client';
import type { CommandService, LogStreams } from '../diagnostics/index.js';
import type { HealthService } from '../health/index.js';
import type { TwinService } from '../twin/index.js';

/**
 * The device-to-cloud messages beside telemetry (twin/reported, commands/{name}/result,
 * health, events, logs, ota/status), for any transport: decode the JSON, check it against
 * its message in the catalogue of @bulwark/protocol (DEVICE_TOPICS), hand it to its context,
 * count the outcome. A message that fails the contract is answered with a reason (on the
 * device's errors topic) and counted, never thrown.
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

/**
 * The device-to-cloud topics the inbox handles, each with the `kind` it is counted under in
 * bulwark_device_messages_total. Their schemas and size bounds come from the catalogue.
 */
const INBOX_KINDS = {
  twinReported: 'twin_reported',
  commandResult: 'command_result',
  health: 'health',
  events: 'events',
  logs: 'logs',
  otaStatus: 'ota_status',
} as const satisfies Partial<Record<DeviceTopicName, string>>;

type InboxTopic = keyof typeof INBOX_KINDS;
type Kind = (typeof INBOX_KINDS)[InboxTopic];

const INBOX_TOPICS = Object.keys(INBOX_KINDS) as InboxTopic[];
const isInboxTopic = (name: DeviceTopicName): name is InboxTopic => name in INBOX_KINDS;

/** Largest payload accepted per kind, before it is parsed. */
const MAX_BYTES = Object.fromEntries(INBOX_TOPICS.map((t) => [INBOX_KINDS[t], DEVICE_TOPICS[t].maxBytes])) as Readonly<Record<Kind, number>>;

function kindOf(suffix: string): { kind: Kind; name?: string } | undefined {
  const match = matchDeviceTopic(suffix);
  if (!match || !isInboxTopic(match.name)) return undefined;
  const name = match.params.name;
  return name === undefined ? { kind: INBOX_KINDS[match.name] } : { kind: INBOX_KINDS[match.name], name };
}

const problemsOf = (errors: ErrorObject[] | null | undefined) => (errors ?? []).slice(0, 10).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);

/** Does the MQTT filter match the topic? */
export function filterMatches(filter: string, topic: string): boolean {
  return filterLevelsMatch(filter.split('/'), topic.split('/'));
}

/** The same on levels already split (`+` one level, `#` the rest), for callers that match one filter often. */
export function filterLevelsMatch(filter: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < filter.length; i += 1) {
    if (filter[i] === '#') return true;
    if (i >= topic.length || (filter[i] !== '+' && filter[i] !== topic[i])) return false;
  }
  return filter.length === topic.length;
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
  const validators = Object.fromEntries(INBOX_TOPICS.map((t) => [INBOX_KINDS[t], ajv.compile(DEVICE_MESSAGES[DEVICE_TOPICS[t].message])])) as Record<Kind, ValidateFunction>;
  const messages = new Counter({
    name: 'bulwark_device_messages_total',
    help: 'Device messages beside telemetry (twin_reported, command_result, health, events, logs, ota_status), by outcome',
    labelNames: ['kind', 'result'] as const,
    registers: [deps.metrics],
  });
  const handle = (deviceId: string, kind: Kind, name: string | undefined, m: unknown): Promise<string> | string => {
    switch (kind) {
      case 'twin_reported':
        return s.twin.onReported(deviceId, m as TwinReported);
      case 'command_result':
        return s.commands.onResult(deviceId, name ?? '', m as CommandResult);
      case 'health':
        return s.health.onReport(deviceId, m as HealthReport);
      case 'events':
        return s.health.onEvent(deviceId, m as DeviceEvent);
      case 'logs':
        return s.logs.onBatch(deviceId, m as LogBatch);
      case 'ota_status':
        return s.ota ? s.ota.onStatus(deviceId, m as OtaStatus) : 'unsupported';
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
      const topics = deviceTopics(deviceId);
      const wants = (topic: string) => filters.some((f) => filterMatches(f, topic));
      const fail = (what: string) => (err: unknown) => deps.log.error({ err, deviceId }, `could not deliver ${what}`);
      if (wants(topics.twinDesired)) void s.twin.deliver(deviceId).catch(fail('the desired configuration'));
      if (s.ota && wants(topics.otaJob)) void s.ota.redeliver(deviceId).catch(fail('open update jobs'));
      const commands = `${topics.root}/commands/`;
      if (filters.some((f) => filterMatches(f, topics.command('x')) || f.startsWith(commands))) {
        void s.commands.deliverOpen(deviceId, (topic) => filters.some((f) => filterMatches(f, topic))).catch(fail('waiting commands'));
      }
    },
  };
}
