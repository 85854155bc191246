import type { Logger } from '@bulwark/core';
import type { Subscription } from '@nats-io/transport-node';
import type { IngestService, TelemetryRecord } from '../ingest/index.js';
import type { NatsLink } from './nats.js';

export const LIVE_SUBJECT = 'bulwark.live';
/** Readings sent in one NATS message at most (a turn's worth under load). */
const MAX_BATCH = 500;

/**
 * Live streams on every node see readings stored on any node. Each node sends the readings
 * it stores to the other nodes, gathered per turn of the event loop into one NATS message
 * (core NATS: a live view is best effort, as it is within a node, where a slow reader drops);
 * a node takes the others' readings only while it has live listeners.
 */
export class LiveRelay {
  #batch: TelemetryRecord[] = [];
  #flushing = false;
  #subscription: Subscription | undefined;
  #receiving: Promise<void> | undefined;

  constructor(private readonly link: NatsLink, private readonly ingest: IngestService, private readonly log: Logger, private readonly onMalformed: () => void = () => undefined) {}

  start(): void {
    this.ingest.relay((r) => this.#send(r), (listening) => (listening ? this.#listen() : this.#mute()));
  }

  async stop(): Promise<void> {
    this.#flush();
    this.#mute();
    await this.#receiving;
  }

  #send(record: TelemetryRecord): void {
    this.#batch.push(record);
    if (this.#batch.length >= MAX_BATCH) this.#flush();
    else if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushing = false;
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    if (!this.link.connected) return;
    try {
      this.link.nc.publish(LIVE_SUBJECT, JSON.stringify(batch));
    } catch (err) {
      this.log.warn({ err }, 'could not send live readings to the other nodes');
    }
  }

  #listen(): void {
    if (this.#subscription) return;
    const sub = this.link.nc.subscribe(LIVE_SUBJECT);
    this.#subscription = sub;
    this.#receiving = (async () => {
      for await (const msg of sub) {
        let records: TelemetryRecord[];
        try {
          records = msg.json<TelemetryRecord[]>();
          if (!Array.isArray(records)) throw new Error('not a batch');
        } catch {
          this.onMalformed();
          continue;
        }
        for (const r of records) {
          if (typeof r?.deviceId === 'string' && typeof r.msgId === 'string') this.ingest.storedElsewhere(r);
        }
      }
    })();
  }

  #mute(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }
}
