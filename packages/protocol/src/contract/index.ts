/**
 * The device contract, defined once: the topic tree (DEVICE_TOPICS) and the messages on it
 * (DEVICE_MESSAGES), as TypeBox schemas whose TypeScript types are derived from them. The
 * gateway, the agent and docs/reference/topics.md all read from here.
 */
export * from './check.js';
export * from './device-messages.js';
export * from './device-posture.js';
export * from './envelope.js';
export * from './messages.js';
export * from './ota-messages.js';
export * from './service-messages.js';
export * from './topics.js';
