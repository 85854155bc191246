import type { Logger } from '@bulwark/core';
import type { Subscription } from '@nats-io/transport-node';
import type { NatsLink } from '../cluster/index.js';
import type { EventBus, EventType, Handler, PlatformEvent } from './bus.js';
import { MemoryBus } from './memory-bus.js';

const SUBJECT_PREFIX = 'bulwark.events.';

/**
 * The bus of cluster mode: every event reaches every node. A publish runs this node's
 * handlers first (as the memory bus does, so a caller that awaits it sees its own effects),
 * then goes to NATS, where every other node runs its handlers. Core NATS is at most once: a
 * node cut off from NATS while an event passes misses it, so on every reconnect the node is
 * told (`onResync`) to re-check what those events protect (live sessions against revocation).
 */
export class NatsBus implements EventBus {
  readonly #local: MemoryBus;
  readonly #subscription: Subscription;
  readonly #receiving: Promise<void>;

  constructor(
    private readonly link: NatsLink,
    private readonly log: Logger,
    private readonly counters?: { received(type: string): void; malformed(): void },
  ) {
    this.#local = new MemoryBus(log);
    this.#subscription = link.nc.subscribe(`${SUBJECT_PREFIX}>`);
    this.#receiving = this.#receive();
  }

  async publish(event: PlatformEvent): Promise<void> {
    await this.#local.publish(event);
    this.link.nc.publish(`${SUBJECT_PREFIX}${event.type}`, JSON.stringify(event));
  }

  /** Runs this node's handlers only (a node catching up after a reconnect). */
  publishLocally(event: PlatformEvent): Promise<void> {
    return this.#local.publish(event);
  }

  subscribe<T extends EventType>(type: T, handler: Handler<T>): () => void {
    return this.#local.subscribe(type, handler);
  }

  async close(): Promise<void> {
    this.#subscription.unsubscribe();
    await this.#receiving;
    await this.#local.close();
  }

  async #receive(): Promise<void> {
    for await (const msg of this.#subscription) {
      let event: PlatformEvent;
      try {
        event = msg.json<PlatformEvent>();
        if (typeof event !== 'object' || event === null || `${SUBJECT_PREFIX}${String(event.type)}` !== msg.subject) throw new Error('type and subject differ');
      } catch (err) {
        this.counters?.malformed();
        this.log.warn({ err, subject: msg.subject }, 'ignoring a malformed event from NATS');
        continue;
      }
      this.counters?.received(event.type);
      await this.#local.publish(event);
    }
  }
}
