import type { Logger } from '@bulwark/core';
import type { SessionTable } from '../gateway/index.js';

/**
 * Draining a node for a rolling restart. First the node says it is not ready (`/readyz` 503),
 * so that the load balancer stops sending it new connections; after `leaveDelayMs` it ends
 * its sessions one at a time, spread over `spreadMs`, so that its devices reconnect to the
 * other nodes as a trickle, not a storm. It never refuses a handshake or closes a connection
 * before CONNACK (an agent counts those as refusals); a device that still arrives is admitted
 * and drained in turn.
 */
const IDLE_CHECK_MS = 1_000;

export class NodeDrain {
  #draining = false;
  #timer: NodeJS.Timeout | undefined;
  #ended = 0;

  constructor(
    private readonly sessions: SessionTable,
    private readonly log: Logger,
    private readonly leaveDelayMs: number,
  ) {}

  get draining(): boolean {
    return this.#draining;
  }

  /** Sessions ended by the drain so far. */
  get ended(): number {
    return this.#ended;
  }

  /** Starts draining (a second call changes nothing). */
  start(spreadMs: number): void {
    if (this.#draining) return;
    this.#draining = true;
    const count = this.sessions.localCount;
    const everyMs = Math.max(5, Math.floor(spreadMs / Math.max(1, count)));
    this.log.warn({ sessions: count, spreadMs, leaveDelayMs: this.leaveDelayMs }, 'draining: out of the load balancer, then ending sessions one by one');
    this.#timer = setTimeout(() => this.#next(everyMs), this.leaveDelayMs);
    this.#timer.unref();
  }

  #next(everyMs: number): void {
    const next = this.sessions.local().next();
    if (!next.done) {
      const session = next.value;
      void this.sessions
        .kick(session.deviceId, 'node_draining', (s) => s === session)
        .then((ended) => {
          if (ended) this.#ended += 1;
        });
    }
    // Once empty, it looks for a late arrival about once a second instead of spinning.
    this.#timer = setTimeout(() => this.#next(everyMs), next.done ? Math.max(everyMs, IDLE_CHECK_MS) : everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
