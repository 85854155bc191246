export { DEVICE_ID_PATTERN, deviceIdProblem, isDeviceId } from './device-id.js';
export type { DeviceIdProblem } from './device-id.js';
export * from './contract/index.js';
export { jsonTextDepth, jsonValueDepth } from './json-depth.js';
export * from './firmware.js';
