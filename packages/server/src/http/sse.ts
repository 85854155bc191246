import type { ServerResponse } from 'node:http';
import type { Counter } from 'prom-client';

/**
 * A Server-Sent Events writer with a bounded queue, for every live stream (telemetry, device
 * logs): while the socket is backed up, events wait up to `maxQueued`; past it the oldest are
 * dropped and counted, and an `event: dropped` tells the reader how many once it catches up.
 * Producers (the ingest pipeline, the log ring) never wait for a reader.
 */
export class SseWriter {
  readonly #queue: string[] = [];
  #blocked = false;
  /** Dropped since the reader was last told. */
  #dropped = 0;
  #droppedTotal = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxQueued: number,
    private readonly dropped: Counter,
  ) {
    res.on('drain', () => this.#flush());
  }

  send(event: string, data: unknown, id?: string): void {
    this.sendJson(event, JSON.stringify(data), id);
  }

  /** Like `send`, with the data already serialised as one line of JSON. */
  sendJson(event: string, json: string, id?: string): void {
    const text = `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${json}\n\n`;
    if (!this.#blocked) {
      this.#blocked = !this.res.write(text);
      return;
    }
    this.#queue.push(text);
    if (this.#queue.length > this.maxQueued) {
      this.#queue.shift();
      this.#dropped += 1;
      this.#droppedTotal += 1;
      this.dropped.inc();
    }
  }

  /** Events dropped for this reader since it connected. */
  get droppedCount(): number {
    return this.#droppedTotal;
  }

  #flush(): void {
    this.#blocked = false;
    if (this.#dropped > 0) this.res.write(`event: dropped\ndata: ${JSON.stringify({ dropped: this.#dropped })}\n\n`);
    this.#dropped = 0;
    while (this.#queue.length > 0 && !this.#blocked) this.#blocked = !this.res.write(this.#queue.shift());
  }
}
