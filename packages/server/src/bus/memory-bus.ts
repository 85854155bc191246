import type { Logger } from '@bulwark/core';
import type { EventBus, EventType, Handler, PlatformEvent } from './bus.js';

/** In-process bus: handlers run in subscription order; one failing handler never stops the others. */
export class MemoryBus implements EventBus {
  readonly #handlers = new Map<EventType, Set<Handler<EventType>>>();

  constructor(private readonly log: Logger) {}

  async publish(event: PlatformEvent): Promise<void> {
    const handlers = [...(this.#handlers.get(event.type) ?? [])];
    await Promise.all(
      handlers.map(async (h) => {
        try {
          await (h as (e: PlatformEvent) => unknown)(event);
        } catch (err) {
          this.log.error({ err, event: event.type }, 'an event handler failed');
        }
      }),
    );
  }

  subscribe<T extends EventType>(type: T, handler: Handler<T>): () => void {
    const set = this.#handlers.get(type) ?? new Set();
    set.add(handler as unknown as Handler<EventType>);
    this.#handlers.set(type, set);
    return () => set.delete(handler as unknown as Handler<EventType>);
  }

  async close(): Promise<void> {
    this.#handlers.clear();
  }
}
