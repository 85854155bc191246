export { MemoryBus } from './memory-bus.js';
export type { EventBus, EventOf, EventType, Handler, PlatformEvent } from './bus.js';
