import type { Logger } from '@bulwark/core';
import { type ConsumerMessages, DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { IngestService } from '../ingest/index.js';
import type { NatsLink } from '../cluster/index.js';
import { PULL_EXPIRES_MS, TELEMETRY_PREFIX, TELEMETRY_STREAM } from './subjects.js';
import { parseRecord } from './records.js';
import { type Tracer, preciseNow } from '../tracing/index.js';

/**
 * Live streams from the telemetry stream: while this node has live listeners (SSE,
 * WebSocket), an ordered consumer of its own reads every new reading, whichever node accepted
 * it, and tells them. It is apart from the store writer's consumers, so neither slows the
 * other; a slow reader drops from its own bounded queue (ingest/routes.ts), never holding
 * this loop.
 */
export class LiveFanout {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #wanted = false;
  #ready: (() => void) | undefined;

  constructor(
    private readonly link: NatsLink,
    private readonly ingest: IngestService,
    private readonly log: Logger,
    private readonly onMalformed: () => void,
    private readonly tracer?: Tracer,
  ) {}

  start(): void {
    this.ingest.onInterest((listening) => {
      this.#wanted = listening;
      if (!listening) {
        this.#messages?.stop();
        return;
      }
      // Resolves once the stream is being read (or after a bounded wait when NATS is away: the live view is best effort).
      const ready = new Promise<void>((resolve) => {
        this.#ready = resolve;
        setTimeout(resolve, 5_000).unref();
      });
      if (this.#messages) this.#ready?.();
      this.#loop ??= this.#run();
      return ready;
    });
  }

  async stop(): Promise<void> {
    this.#wanted = false;
    this.#messages?.stop();
    await this.#loop;
  }

  async #run(): Promise<void> {
    try {
      while (this.#wanted) {
        try {
          const consumer = await jetstream(this.link.nc).consumers.get(TELEMETRY_STREAM, { filter_subjects: `${TELEMETRY_PREFIX}.>`, deliver_policy: DeliverPolicy.New });
          const messages = (this.#messages = await consumer.consume({ expires: PULL_EXPIRES_MS }));
          this.#ready?.();
          if (!this.#wanted) messages.stop();
          try {
            for await (const m of messages) {
              const record = parseRecord(m.data);
              if (!record) {
                this.onMalformed();
                continue;
              }
              // A traced reading: this node's live listeners heard it (the span runs from when the stream took it).
              if (record.traceparent === undefined) this.ingest.announce(record);
              else {
                const start = preciseNow();
                this.ingest.announce(record);
                this.tracer?.continued(record.traceparent, record.deviceId, record.msgId, 'live.fanout', Math.min(start, Number(m.info.timestampNanos) / 1e6));
              }
            }
          } finally {
            this.#messages = undefined;
            // Not left on the server until its inactivity threshold: listeners come and go with every dashboard tab.
            await consumer.delete().catch(() => undefined);
          }
        } catch (err) {
          if (!this.#wanted) break;
          this.log.warn({ err: (err as Error).message }, 'live fan-out: the telemetry stream is not readable; trying again');
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
    } finally {
      this.#messages = undefined;
      this.#loop = undefined;
    }
  }
}
