import type { Clock, Logger } from '@bulwark/core';
import { Counter, Histogram, type Registry } from 'prom-client';
import { MessageTrace, type Span, type SpanAttributes, type TraceRecord, newSpanId, parseTraceparent, preciseNow } from './trace.js';
import type { SpanExporter, TraceRepository, TracingSettings } from './tracing.js';

/** Traces waiting to be written past which new ones are dropped (the store is away or slow). */
const MAX_BUFFERED = 5_000;
const FLUSH_MS = 1_000;
const HOUR_MS = 3_600_000;

/**
 * Decides which messages are traced and records what their hops took: in the trace store
 * (every node's spans of a message, for `bulwark telemetry trace`), in the per-hop latency
 * histograms, and over OTLP when an endpoint is set. A message is traced when its device sent
 * a sampled `traceparent`, or when it is the `sampleEvery`-th; at most `maxPerSecond` a
 * second either way. The decision is a counter and a comparison: the message that is not
 * traced carries nothing further.
 */
export class Tracer {
  readonly #hop: Histogram<'hop'>;
  readonly #hops = new Map<string, { observe(v: number): void }>();
  readonly #dropped: Counter<'reason'>;
  readonly #recorded: Counter;
  #buffer: TraceRecord[] = [];
  #count = 0;
  #second = 0;
  #thisSecond = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  readonly #finish = (record: TraceRecord) => this.record(record);

  constructor(
    private readonly settings: TracingSettings,
    private readonly deps: { node: string; clock: Clock; log: Logger; metrics: Registry; store: TraceRepository; exporter?: SpanExporter },
  ) {
    this.#hop = new Histogram({
      name: 'bulwark_message_hop_seconds',
      help: 'Time a traced message spent in each hop (gateway.receive, pipeline steps, ingest.commit, live.fanout, gateway.ack, stream.write; telemetry.message is receipt to acknowledgement), from the traced sample (tracing.sampleEvery)',
      labelNames: ['hop'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [deps.metrics],
    });
    this.#recorded = new Counter({ name: 'bulwark_traces_recorded_total', help: 'Message traces recorded by this node (spans kept in the trace store and exported when tracing.otelEndpoint is set)', registers: [deps.metrics] });
    this.#dropped = new Counter({
      name: 'bulwark_traces_dropped_total',
      help: 'Message traces not recorded, by reason: rate (over tracing.maxPerSecond), buffer (the trace store fell behind), store (a write failed)',
      labelNames: ['reason'] as const,
      registers: [deps.metrics],
    });
  }

  start(): void {
    this.#flushTimer = setInterval(() => void this.flush(), FLUSH_MS);
    this.#flushTimer.unref();
    this.#pruneTimer = setInterval(() => void this.prune().catch((err: unknown) => this.deps.log.warn({ err }, 'could not delete old message traces')), HOUR_MS);
    this.#pruneTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#flushTimer);
    clearInterval(this.#pruneTimer);
    await this.flush();
    await this.deps.exporter?.shutdown();
  }

  /**
   * A trace for a message received at `receivedAt` (epoch ms, precise) when it is to be
   * traced, else undefined. `traceparent` is what the device sent, if anything.
   */
  begin(deviceId: string, receivedAt: number, traceparent?: string): MessageTrace | undefined {
    const parent = parseTraceparent(traceparent);
    const every = this.settings.sampleEvery;
    const chosen = parent?.sampled === true || (every > 0 && ++this.#count >= every);
    if (!chosen) return undefined;
    if (every > 0 && this.#count >= every) this.#count = 0;
    if (!this.#admit()) return undefined;
    return new MessageTrace(deviceId, this.deps.node, receivedAt, parent, this.#finish);
  }

  /**
   * A hop of a traced message on a node other than the one that received it (the stream's
   * store writer, a node's live fan-out): one span under the message's root span.
   */
  continued(traceparent: string, deviceId: string, msgId: string, name: string, start: number, attributes?: SpanAttributes): void {
    const parent = parseTraceparent(traceparent);
    if (!parent) return;
    const span: Span = { name, spanId: newSpanId(), parentSpanId: parent.spanId, node: this.deps.node, start, end: preciseNow(), ...(attributes ? { attributes } : {}) };
    this.record({ traceId: parent.traceId, deviceId, msgId, node: this.deps.node, spans: [span] });
  }

  /** Keeps a finished record: histograms now, the store within a second, the exporter at once. */
  record(record: TraceRecord): void {
    for (const s of record.spans) this.#observe(s.name, (s.end - s.start) / 1000);
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.#dropped.inc({ reason: 'buffer' });
      return;
    }
    this.#buffer.push(record);
    this.#recorded.inc();
    // Called where an acknowledgement was just written: an exporter that throws must not reach that code.
    try {
      this.deps.exporter?.export([record]);
    } catch (err) {
      this.deps.log.warn({ err }, 'could not hand spans to the OTLP exporter');
    }
  }

  /** Writes the traces waiting (one batch); resolves when written or given up. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#buffer.length === 0) return;
      const batch = this.#buffer;
      this.#buffer = [];
      try {
        await this.deps.store.insertBatch(batch, this.deps.clock.now());
      } catch (err) {
        this.#dropped.inc({ reason: 'store' }, batch.length);
        this.deps.log.warn({ err, traces: batch.length }, 'could not store message traces');
      }
    });
    return this.#writing;
  }

  /** Deletes traces older than tracing.retentionHours; returns how many. */
  prune(): Promise<number> {
    return this.deps.store.deleteBefore(this.deps.clock.now() - this.settings.retentionHours * HOUR_MS);
  }

  #admit(): boolean {
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#thisSecond = 0;
    }
    if (++this.#thisSecond <= this.settings.maxPerSecond) return true;
    this.#dropped.inc({ reason: 'rate' });
    return false;
  }

  #observe(hop: string, seconds: number): void {
    let child = this.#hops.get(hop);
    if (!child) this.#hops.set(hop, (child = this.#hop.labels(hop)));
    child.observe(seconds);
  }
}
