import type { Logger } from '@bulwark/core';
import { AckPolicy, type ConsumerMessages, DeliverPolicy, type JsMsg, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { TelemetryRecord } from '../ingest/index.js';
import type { NatsLink, SingletonJob } from '../cluster/index.js';
import { PULL_EXPIRES_MS, TELEMETRY_STREAM, partitionSubjects } from './subjects.js';
import { type StreamRecord, parseRecord } from './records.js';
import type { Tracer } from '../tracing/index.js';

/** Where a writer puts a batch: resolves with how many were new; nothing written when it throws. */
export interface BatchStore {
  write(records: readonly TelemetryRecord[]): Promise<number>;
}

export interface WriterMetrics {
  rows(inserted: number, repeats: number): void;
  batch(size: number, seconds: number): void;
  failure(): void;
  malformed(): void;
  reset(): void;
}

export interface WriterOptions {
  readonly batchMax: number;
  /** Readings delivered to the writer and not yet stored (its memory bound). */
  readonly maxPending: number;
  /**
   * How long a batch may wait to grow before it is written (unless it is full): fewer, larger
   * transactions cost PostgreSQL less per reading. Devices are acknowledged by the stream, so
   * this delays only when readings show in queries.
   */
  readonly lingerMs: number;
}

export const writerName = (partition: number): string => `store-writer-${partition}`;
const ACK_WAIT_MS = 30_000;
const nanos = (ms: number): number => ms * 1_000_000;

/**
 * The store writer of one stream partition, run on one node at a time (a lease per
 * partition). Its durable consumer acknowledges all up to a message (AckAll): one
 * acknowledgement per batch, sent after the batch is committed, so that everything before
 * it in the partition is stored.
 *
 * AckAll acknowledges what this writer has not seen, too, if a delivery went missing (a
 * NATS connection dropped with messages in flight) or a previous writer left messages
 * pending. So a writer (re)starts its consumer from the acknowledged floor, and checks that
 * the consumer's delivery sequence has no gap; on a gap it drops what it holds unacknowledged
 * and starts again from the floor (the store skips what it already has).
 */
export class PartitionWriter implements SingletonJob {
  #running = false;
  #loop: Promise<void> | undefined;
  #messages: ConsumerMessages | undefined;
  #buffer: JsMsg[] = [];
  #nextDelivery = 1;
  #gap = false;
  #wake: (() => void) | undefined;
  /** When the oldest reading in the buffer arrived (performance.now()). */
  #firstAt = 0;

  constructor(
    private readonly partition: number,
    private readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
    private readonly store: BatchStore,
    private readonly options: WriterOptions,
    private readonly deps: { log: Logger; metrics: WriterMetrics; tracer?: Tracer | undefined },
  ) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    for (let pause = 200; this.#running; pause = Math.min(pause * 2, 5_000)) {
      try {
        await this.#consume();
        pause = 200;
      } catch (err) {
        if (!this.#running) break;
        this.deps.metrics.failure();
        this.deps.log.warn({ partition: this.partition, err: (err as Error).message }, 'store writer: restarting its consumer');
        await sleep(pause);
      } finally {
        this.#release();
      }
    }
  }

  /** One life of the consumer, from the acknowledged floor, until stopped or a gap. */
  async #consume(): Promise<void> {
    await this.#recreate();
    const consumer = await jetstream(this.link.nc).consumers.get(TELEMETRY_STREAM, writerName(this.partition));
    const messages = (this.#messages = await consumer.consume({ max_messages: Math.min(this.options.batchMax, this.options.maxPending), expires: PULL_EXPIRES_MS }));
    this.#nextDelivery = 1;
    this.#gap = false;
    let ended = false;
    const receiving = (async () => {
      for await (const m of messages) {
        if (m.info.deliverySequence !== this.#nextDelivery) this.#gap = true;
        this.#nextDelivery = m.info.deliverySequence + 1;
        if (this.#buffer.push(m) === 1) this.#firstAt = performance.now();
        // The loop waits for the first reading, for a full batch, or for a gap.
        if (this.#buffer.length === 1 || this.#buffer.length >= this.options.batchMax || this.#gap) this.#wake?.();
      }
    })().finally(() => {
      ended = true;
      this.#wake?.();
    });
    try {
      while (this.#running && !this.#gap) {
        if (this.#buffer.length === 0) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = undefined;
          if (ended && this.#buffer.length === 0) throw new Error('the consumer stopped');
          continue;
        }
        const lingering = this.#firstAt + this.options.lingerMs - performance.now();
        if (this.#buffer.length < this.options.batchMax && lingering > 0 && !ended) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
            timer = setTimeout(resolve, lingering);
          });
          clearTimeout(timer);
          this.#wake = undefined;
          continue;
        }
        // At most one batch per linger time unless full: what arrived during this write waits from when it was taken.
        const takenAt = performance.now();
        await this.#writeBatch(this.#buffer.splice(0, this.options.batchMax));
        if (this.#buffer.length > 0) this.#firstAt = takenAt;
      }
      if (this.#gap) {
        this.deps.metrics.reset();
        this.deps.log.warn({ partition: this.partition }, 'store writer: a delivery went missing; starting again from the last stored reading');
      }
    } finally {
      messages.stop();
      await receiving.catch(() => undefined);
    }
  }

  /** Writes one batch, retrying while the store is down (keeping the messages from redelivery), then acknowledges it. */
  async #writeBatch(batch: JsMsg[]): Promise<void> {
    const records: TelemetryRecord[] = [];
    /** Traced readings, and when the stream took each (epoch ms): their `stream.write` span runs from there to the commit. */
    const traced: [StreamRecord, number][] = [];
    for (const m of batch) {
      const r = parseRecord(m.data);
      if (r) records.push(r);
      else this.deps.metrics.malformed();
      if (r?.traceparent !== undefined) traced.push([r, Number(m.info.timestampNanos) / 1e6]);
    }
    let keptAt = Date.now();
    for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
      const started = performance.now();
      try {
        const inserted = await this.store.write(records);
        this.deps.metrics.batch(records.length, (performance.now() - started) / 1000);
        this.deps.metrics.rows(inserted, records.length - inserted);
        for (const [r, appendedAt] of traced) {
          this.deps.tracer?.continued(r.traceparent as string, r.deviceId, r.msgId, 'stream.write', appendedAt, { 'bulwark.partition': this.partition, 'bulwark.batch_size': records.length });
        }
        break;
      } catch (err) {
        this.deps.metrics.failure();
        if (!this.#running || this.#gap) throw err;
        if (pause === 100) this.deps.log.warn({ partition: this.partition, err: (err as Error).message }, 'store writer: the store refused a batch; retrying (the stream keeps the readings)');
        if (Date.now() - keptAt > ACK_WAIT_MS / 3) {
          // Still ours: no redelivery of what waits here while the store is away.
          for (const m of [...batch, ...this.#buffer]) m.working();
          keptAt = Date.now();
        }
        await sleep(pause);
      }
    }
    // Only after the commit, and only while this node still holds the partition: one acknowledgement for the batch.
    if (this.#running && !this.#gap) await batch[batch.length - 1]?.ackAck({ timeout: 5_000 }).catch(() => false);
  }

  /** (Re)creates the durable consumer from the acknowledged floor, so nothing left pending is acknowledged unseen. */
  async #recreate(): Promise<void> {
    const name = writerName(this.partition);
    let floor = 0;
    try {
      floor = (await this.jsm.consumers.info(TELEMETRY_STREAM, name)).ack_floor.stream_seq;
      await this.jsm.consumers.delete(TELEMETRY_STREAM, name);
    } catch (err) {
      if (!/consumer not found/i.test((err as Error).message)) throw err;
    }
    await this.jsm.consumers.add(TELEMETRY_STREAM, {
      durable_name: name,
      filter_subject: partitionSubjects(this.partition),
      ack_policy: AckPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_ack_pending: this.options.maxPending,
      max_deliver: -1,
      ...(floor > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: floor + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
  }

  /** What this writer held unacknowledged is left to the next one (redelivered from the floor). */
  #release(): void {
    this.#messages?.stop();
    this.#messages = undefined;
    this.#buffer = [];
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
