import { type Logger, PlatformError } from '@bulwark/core';
import { type NatsConnection, connect } from '@nats-io/transport-node';

/** How long a start waits for NATS before it fails naming it. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * One node's connection to NATS, shared by the bus, the session registry and the node
 * heartbeat. It reconnects for ever; while it is down `connected` is false, which fails
 * `/readyz` and refuses new device sessions (acting on stale state would be worse), and
 * every reconnect is announced so that the parts that may have missed something catch up.
 */
export class NatsLink {
  #connected = true;
  readonly #onReconnect = new Set<() => void>();
  readonly #watching: Promise<void>;

  private constructor(readonly nc: NatsConnection, readonly servers: string, private readonly log: Logger) {
    this.#watching = this.#watch();
  }

  /** Connects to the first answering server of `servers` (comma-separated nats:// URLs). */
  static async connect(servers: string, name: string, log: Logger): Promise<NatsLink> {
    const list = servers.split(',').map((s) => s.trim()).filter(Boolean);
    const shown = list.map(redactUrl).join(',');
    try {
      // noEcho: a node does not hear its own publishes on core subjects (it ran its own handlers already).
      const nc = await connect({ servers: list, name, noEcho: true, timeout: CONNECT_TIMEOUT_MS, maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: false });
      return new NatsLink(nc, shown, log);
    } catch (err) {
      throw new PlatformError('BULWARK_ERR_BUS_UNAVAILABLE', `NATS at ${shown} is unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  get connected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  /** Calls `fn` after every reconnect; returns a function that removes it. */
  onReconnect(fn: () => void): () => void {
    this.#onReconnect.add(fn);
    return () => this.#onReconnect.delete(fn);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
    await this.#watching;
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.#connected = false;
        this.log.warn({ server: redactUrl(String(s.server)) }, 'NATS connection lost: not admitting new device sessions until it is back');
      } else if (s.type === 'reconnect') {
        this.#connected = true;
        this.log.info({ server: redactUrl(String(s.server)) }, 'NATS connection back');
        for (const fn of this.#onReconnect) fn();
      }
    }
  }
}

/** A URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
