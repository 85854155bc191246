import { DEVICE_MESSAGE_LIMITS } from './device-messages.js';
import type { DeviceMessageName } from './messages.js';
import { OTA_LIMITS } from './ota-messages.js';

/** The per-device MQTT topic tree of the device contract (DESIGN.md §4): `devices/{id}/…`. */
export const DEVICE_TOPIC_ROOT = 'devices';

export type TopicDirection = 'device-to-cloud' | 'cloud-to-device';

export interface DeviceTopic {
  /** Levels after `devices/{id}/`; a `{placeholder}` level stands for exactly one level of any name. */
  readonly pattern: string;
  readonly direction: TopicDirection;
  /** QoS the sender uses on this topic (either, where two are listed). */
  readonly qos: readonly (0 | 1)[];
  /** The payload, by its name in DEVICE_MESSAGES. */
  readonly message: DeviceMessageName;
  /** Largest payload the receiver reads; none: only the transport's own limit (`mqtt.maxPayloadBytes`). */
  readonly maxBytes?: number;
  readonly description: string;
}

/**
 * Every topic of a device's tree. The gateway's ACL lets a device publish exactly to the
 * device-to-cloud ones; the platform validates each device-to-cloud payload against its
 * message and sends cloud-to-device ones in theirs; the agent builds and reads the same.
 */
export const DEVICE_TOPICS = {
  telemetry: {
    pattern: 'telemetry',
    direction: 'device-to-cloud',
    qos: [0, 1],
    message: 'TelemetryEnvelope',
    description: 'Readings into the telemetry pipeline; QoS 0 readings are the first shed under load.',
  },
  telemetryStream: {
    pattern: 'telemetry/{stream}',
    direction: 'device-to-cloud',
    qos: [0, 1],
    message: 'TelemetryEnvelope',
    description: 'The same, for one named stream of the device.',
  },
  events: {
    pattern: 'events',
    direction: 'device-to-cloud',
    qos: [1],
    message: 'DeviceEvent',
    maxBytes: DEVICE_MESSAGE_LIMITS.eventMaxBytes,
    description: 'Boot, crash, state changes; stored once per event id.',
  },
  health: {
    pattern: 'health',
    direction: 'device-to-cloud',
    qos: [0, 1],
    message: 'HealthReport',
    maxBytes: DEVICE_MESSAGE_LIMITS.healthMaxBytes,
    description: 'Periodic health: latest report and a bounded history.',
  },
  twinReported: {
    pattern: 'twin/reported',
    direction: 'device-to-cloud',
    qos: [1],
    message: 'TwinReported',
    maxBytes: DEVICE_MESSAGE_LIMITS.twinReportedMaxBytes,
    description: 'The configuration the device runs, and whether it took the desired version; drives drift.',
  },
  twinDesired: {
    pattern: 'twin/desired',
    direction: 'cloud-to-device',
    qos: [1],
    message: 'TwinDesired',
    maxBytes: DEVICE_MESSAGE_LIMITS.twinMaxBytes,
    description: 'The desired configuration, not retained: sent on every change and on every subscribe.',
  },
  command: {
    pattern: 'commands/{name}',
    direction: 'cloud-to-device',
    qos: [1],
    message: 'CommandRequest',
    maxBytes: DEVICE_MESSAGE_LIMITS.commandMaxBytes,
    description: 'A command; sent again on every subscribe while it is open.',
  },
  commandResult: {
    pattern: 'commands/{name}/result',
    direction: 'device-to-cloud',
    qos: [1],
    message: 'CommandResult',
    maxBytes: DEVICE_MESSAGE_LIMITS.commandMaxBytes,
    description: 'How the command went; moves the command record.',
  },
  otaJob: {
    pattern: 'ota/job',
    direction: 'cloud-to-device',
    qos: [1],
    message: 'OtaJobMessage',
    maxBytes: OTA_LIMITS.jobMaxBytes,
    description: 'A firmware update job, or its cancel; sent again on every subscribe while unanswered.',
  },
  otaStatus: {
    pattern: 'ota/status',
    direction: 'device-to-cloud',
    qos: [1],
    message: 'OtaStatus',
    maxBytes: OTA_LIMITS.statusMaxBytes,
    description: "Every transition of the device's update; moves its update job.",
  },
  time: {
    pattern: 'time',
    direction: 'device-to-cloud',
    qos: [0],
    message: 'TimeRequest',
    description: 'Time sync request (NTP-style four timestamps).',
  },
  timeReply: {
    pattern: 'time/reply',
    direction: 'cloud-to-device',
    qos: [0],
    message: 'TimeReply',
    description: 'The answer to a time request.',
  },
  certsRotate: {
    pattern: 'certs/rotate',
    direction: 'device-to-cloud',
    qos: [1],
    message: 'RotationRequest',
    description: 'Certificate rotation request, sent with the current certificate.',
  },
  certsRotateResult: {
    pattern: 'certs/rotate/result',
    direction: 'cloud-to-device',
    qos: [1],
    message: 'RotationResult',
    description: 'The new certificate, or an error.',
  },
  logs: {
    pattern: 'logs',
    direction: 'device-to-cloud',
    qos: [0],
    message: 'LogBatch',
    maxBytes: DEVICE_MESSAGE_LIMITS.logBatchMaxBytes,
    description: 'Log lines, kept only inside a window the operator opened.',
  },
  errors: {
    pattern: 'errors',
    direction: 'cloud-to-device',
    qos: [1],
    message: 'ErrorNotice',
    description: 'Why a message of the device was refused (MQTT 3.1.1 has no negative PUBACK).',
  },
} as const satisfies Record<string, DeviceTopic>;

export type DeviceTopicName = keyof typeof DEVICE_TOPICS;

/** Each pattern's levels: a literal level, or the name of a placeholder level. */
const COMPILED = Object.entries(DEVICE_TOPICS).map(([name, topic]) => ({
  name: name as DeviceTopicName,
  topic,
  levels: topic.pattern.split('/').map((part) => {
    const placeholder = /^\{(\w+)\}$/.exec(part)?.[1];
    return placeholder === undefined ? { literal: part } : { placeholder };
  }),
}));
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

export interface DeviceTopicMatch {
  readonly name: DeviceTopicName;
  readonly topic: DeviceTopic;
  /** The placeholder levels, e.g. `{ name: 'reboot' }` for `commands/reboot/result`. */
  readonly params: Readonly<Record<string, string>>;
}

/** The catalogue topic of `suffix` (the topic after `devices/{id}/`); a placeholder matches one non-empty level. */
export function matchDeviceTopic(suffix: string): DeviceTopicMatch | undefined {
  return matchDeviceTopicLevels(suffix.split('/'), 0);
}

/** The same for a topic already split into levels, the suffix starting at `from` (2 for a whole `devices/{id}/…` topic). */
export function matchDeviceTopicLevels(levels: readonly string[], from: number): DeviceTopicMatch | undefined {
  const n = levels.length - from;
  next: for (const c of COMPILED) {
    if (c.levels.length !== n) continue;
    let params: Record<string, string> | undefined;
    for (let i = 0; i < n; i += 1) {
      const want = c.levels[i]!;
      const level = levels[from + i]!;
      if (want.literal !== undefined ? want.literal !== level : level.length === 0) continue next;
      if (want.placeholder !== undefined) (params ??= {})[want.placeholder] = level;
    }
    return { name: c.name, topic: c.topic, params: params ?? NO_PARAMS };
  }
  return undefined;
}

/** The topic (or, with `+` for its placeholders, the MQTT filter) of a catalogue entry in one device's tree. */
export function deviceTopic(deviceId: string, name: DeviceTopicName, params: Readonly<Record<string, string>> = {}): string {
  const suffix = DEVICE_TOPICS[name].pattern.replace(/\{(\w+)\}/g, (_, p: string) => params[p] ?? '+');
  return `${DEVICE_TOPIC_ROOT}/${deviceId}/${suffix}`;
}

/**
 * The topics of one device, by name. (The topic makers are methods, not arrow properties: the
 * TypeScript loader gives each arrow in an object literal a name property, about 250 bytes a
 * device, for every device a gateway or the simulator hosts.)
 */
export const deviceTopics = (id: string) => ({
  root: `${DEVICE_TOPIC_ROOT}/${id}`,
  telemetry(stream?: string) {
    return stream ? deviceTopic(id, 'telemetryStream', { stream }) : deviceTopic(id, 'telemetry');
  },
  events: deviceTopic(id, 'events'),
  health: deviceTopic(id, 'health'),
  twinDesired: deviceTopic(id, 'twinDesired'),
  twinReported: deviceTopic(id, 'twinReported'),
  command(name: string) {
    return deviceTopic(id, 'command', { name });
  },
  commandResult(name: string) {
    return deviceTopic(id, 'commandResult', { name });
  },
  otaJob: deviceTopic(id, 'otaJob'),
  otaStatus: deviceTopic(id, 'otaStatus'),
  time: deviceTopic(id, 'time'),
  timeReply: deviceTopic(id, 'timeReply'),
  certsRotate: deviceTopic(id, 'certsRotate'),
  certsRotateResult: deviceTopic(id, 'certsRotateResult'),
  logs: deviceTopic(id, 'logs'),
  errors: deviceTopic(id, 'errors'),
});
