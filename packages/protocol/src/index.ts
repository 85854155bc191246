export { DEVICE_ID_PATTERN, deviceIdProblem, isDeviceId } from './device-id.js';
export type { DeviceIdProblem } from './device-id.js';
export { DEVICE_TOPIC_ROOT, deviceTopics } from './topics.js';
export { ENVELOPE_LIMITS } from './envelope.js';
export type { TelemetryEnvelope } from './envelope.js';
