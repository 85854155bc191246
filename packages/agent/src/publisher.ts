import type { MqttClient } from 'mqtt';
import type { QueuedRow, SqliteQueue } from './queue.js';

/**
 * Drains the offline queue over one MQTT session: QoS 1, at most `window` messages without
 * a PUBACK, oldest first. A PUBACK deletes the row (in the queue's next group commit). On a
 * new session everything still in the queue is sent again with the same ids; the platform
 * de-duplicates. A PUBACK missing for `ackTimeoutMs` means a dead path: `onStall` drops it.
 */
export class Publisher {
  readonly #queue: SqliteQueue;
  readonly #window: number;
  readonly #ackTimeoutMs: number;
  readonly #render: (row: QueuedRow) => string;
  readonly #mono: () => number;
  readonly #onStall: () => void;
  #client: MqttClient | undefined;
  #generation = 0;
  #cursor = 0;
  #inflight = new Map<number, number>();
  #scheduled = false;

  constructor(queue: SqliteQueue, o: { window: number; ackTimeoutMs: number; render: (row: QueuedRow) => string; mono: () => number; onStall: () => void }) {
    this.#queue = queue;
    this.#window = o.window;
    this.#ackTimeoutMs = o.ackTimeoutMs;
    this.#render = o.render;
    this.#mono = o.mono;
    this.#onStall = o.onStall;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  attach(client: MqttClient): void {
    this.#generation += 1;
    this.#client = client;
    this.#cursor = 0;
    this.#inflight.clear();
    this.#queue.flush();
    this.kick();
  }

  detach(): void {
    this.#generation += 1;
    this.#client = undefined;
    this.#inflight.clear();
  }

  /** New rows are committed, or room opened in the window: publish more soon. */
  kick(): void {
    if (this.#scheduled || !this.#client) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  /** Called periodically: a PUBACK overdue means the connection is dead even if TCP has not noticed. */
  checkStall(): void {
    if (!this.#client) return;
    const now = this.#mono();
    for (const sentAt of this.#inflight.values()) {
      if (now - sentAt > this.#ackTimeoutMs) {
        this.#onStall();
        return;
      }
    }
  }

  #pump(): void {
    const client = this.#client;
    if (!client) return;
    const gen = this.#generation;
    while (this.#inflight.size < this.#window) {
      const rows = this.#queue.after(this.#cursor, this.#window - this.#inflight.size);
      if (rows.length === 0) break;
      for (const row of rows) {
        this.#cursor = row.rowId;
        this.#inflight.set(row.rowId, this.#mono());
        client.publish(row.topic, this.#render(row), { qos: 1 }, (err) => this.#done(gen, row.rowId, err));
      }
      this.#queue.markSent(rows.length);
    }
  }

  /** True when nothing is queued or on the wire. */
  get idle(): boolean {
    return this.#inflight.size === 0 && this.#queue.depth === 0;
  }

  #done(gen: number, rowId: number, err: Error | undefined): void {
    if (gen !== this.#generation) return;
    this.#inflight.delete(rowId);
    if (!err) this.#queue.ack([rowId]);
    this.kick();
  }
}
