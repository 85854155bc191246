/**
 * Test support for other packages (`@bulwark/server/testing`): the real server on port 0,
 * signed firmware releases, and the simulated OTA fleet. The agent's integration tests list
 * `@bulwark/server` as a devDependency and import this, so no agent file reaches into the
 * server's sources by path.
 */
export { newAdminKey, startTestServer, tempDir } from './harness.js';
export type { ApiResponse, TestServer, TestServerOptions } from './harness.js';
export { firmwareKit, sha256, uploadFirmware } from './firmware.js';
export type { FirmwareKit } from './firmware.js';
export { simFleet, stagedRollout } from './ota-fleet.js';
export type { DeviceAnswer, SimFleet } from './ota-fleet.js';
