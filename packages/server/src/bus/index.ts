export { MemoryBus } from './memory-bus.js';
export type { EventBus, EventOf, EventType, Handler, PlatformEvent, RelayedLogEntry } from './bus.js';
export { NatsBus } from './nats-bus.js';
