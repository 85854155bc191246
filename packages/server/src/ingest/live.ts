import type { ServerResponse } from 'node:http';
import type { Counter } from 'prom-client';
import type { TelemetryRecord } from './ingest.js';

/**
 * One live subscriber over Server-Sent Events. Readings are written as they are stored; a
 * subscriber that reads slower than readings arrive gets a bounded queue, and past it the
 * oldest waiting readings are dropped and counted, so neither the pipeline nor the store
 * ever waits for a browser.
 */
/** What a live reading looks like on the wire, for every live transport. */
export function liveReading(r: TelemetryRecord): string {
  return JSON.stringify({ deviceId: r.deviceId, msgId: r.msgId, schemaId: r.schemaId, ts: r.ts, receivedAt: r.receivedAt, deviceTs: r.deviceTs, data: r.data });
}

export class LiveSubscriber {
  readonly #queue: string[] = [];
  #blocked = false;
  #dropped = 0;

  constructor(private readonly res: ServerResponse, private readonly maxQueued: number, private readonly dropped: Counter) {
    res.on('drain', () => this.#flush());
  }

  push(r: TelemetryRecord): void {
    const event = `id: ${r.deviceId}/${r.msgId}\nevent: reading\ndata: ${liveReading(r)}\n\n`;
    if (!this.#blocked) {
      this.#blocked = !this.res.write(event);
      return;
    }
    this.#queue.push(event);
    if (this.#queue.length > this.maxQueued) {
      this.#queue.shift();
      this.#dropped += 1;
      this.dropped.inc();
    }
  }

  get droppedCount(): number {
    return this.#dropped;
  }

  #flush(): void {
    this.#blocked = false;
    if (this.#dropped > 0) this.res.write(`event: dropped\ndata: ${JSON.stringify({ dropped: this.#dropped })}\n\n`);
    while (this.#queue.length > 0 && !this.#blocked) this.#blocked = !this.res.write(this.#queue.shift() as string);
  }
}

/** The WebSocket side of a live subscription: past `maxBufferedBytes` waiting to be sent, readings are dropped and counted. */
export function webSocketSink(socket: { readyState: number; bufferedAmount: number; send(data: string): void }, maxBufferedBytes: number, dropped: Counter): (r: TelemetryRecord) => void {
  return (r) => {
    if (socket.readyState !== 1) return;
    if (socket.bufferedAmount > maxBufferedBytes) {
      dropped.inc();
      return;
    }
    socket.send(liveReading(r));
  };
}
