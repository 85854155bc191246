export { DEVICE_ID_PATTERN, deviceIdProblem, isDeviceId } from './device-id.js';
export type { DeviceIdProblem } from './device-id.js';
export { DEVICE_TOPIC_ROOT, deviceTopics } from './topics.js';
export { ENVELOPE_LIMITS } from './envelope.js';
export { jsonTextDepth, jsonValueDepth } from './json-depth.js';
export type { TelemetryEnvelope } from './envelope.js';
export { BUILTIN_COMMANDS, COMMAND_NAME_PATTERN, DEVICE_MESSAGE_LIMITS } from './device-messages.js';
export type { CommandRequest, CommandResult, CommandStatus, DeviceEvent, HealthReport, LogBatch, LogLevel, TwinDesired, TwinReported } from './device-messages.js';
export * from './firmware.js';
