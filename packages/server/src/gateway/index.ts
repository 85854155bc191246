// What other contexts use of the gateway: the session table cluster mode builds on.
// The transports themselves are started by the composition root (server.ts).
export { LocalSessionTable } from './sessions-local.js';
export type { LocalSessionTableDeps } from './sessions-local.js';
export type { Admission, DeliveryOptions, KickReason, LiveSession, SessionConnection, SessionDirectory, SessionTable } from './sessions.js';
