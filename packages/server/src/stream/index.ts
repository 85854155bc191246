import type { Logger } from '@bulwark/core';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import type { DeadLetter, IngestService } from '../ingest/index.js';
import type { ClusterMembership } from '../cluster/index.js';
import { DeadLetterWriter } from './dead-letter-writer.js';
import { LiveFanout } from './live-fanout.js';
import { streamMetrics } from './metrics.js';
import { type BatchStore, PartitionWriter, type WriterOptions, writerName } from './store-writer.js';
import { DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, STREAM_PARTITIONS, TELEMETRY_STREAM, deviceSubjects, subjectToken } from './subjects.js';
import { type StreamSettings, StreamSink, ensureStreams } from './telemetry-stream.js';
import { JetStreamFeed } from './jetstream-feed.js';
import type { Tracer } from '../tracing/index.js';

/** How often the node checks that unstored readings leave room in the stream. */
const GUARD_INTERVAL_MS = 2_000;
/** Share of `stream.maxBytes` unstored readings may fill before new ones are refused. */
const UNSTORED_SHARE = 0.8;

export { STREAM_PARTITIONS, TELEMETRY_STREAM, DEAD_LETTER_STREAM, telemetrySubject, schemaSubjects, deviceSubjects, TELEMETRY_PREFIX, subjectToken } from './subjects.js';
export type { StreamSettings } from './telemetry-stream.js';
export type { BatchStore } from './store-writer.js';

/**
 * Cluster mode's telemetry stream (docs/decisions/0019): the sink ingest acknowledges
 * into, the store writers (one per partition, shared out among the nodes), the dead-letter
 * writer, the live fan-out, and the feed integrations read.
 */
export class TelemetryStreams {
  readonly sink: StreamSink;
  readonly feed: JetStreamFeed;
  readonly #metrics: ReturnType<typeof streamMetrics>;
  #fanout: LiveFanout | undefined;
  readonly #guard: NodeJS.Timeout;
  #guarding = false;
  /** The writers' lag as the guard last measured it (undefined: not yet, or NATS did not answer). */
  #lag: number | undefined;

  private constructor(
    private readonly cluster: ClusterMembership,
    private readonly jsm: JetStreamManager,
    private readonly settings: StreamSettings,
    private readonly log: Logger,
    registry: Registry,
    private readonly tracer: Tracer | undefined,
  ) {
    this.#metrics = streamMetrics(
      registry,
      () => this.#lag,
      () => this.sink.refuse,
    );
    this.sink = new StreamSink(cluster.link, log, (seconds) => this.#metrics.append(seconds));
    this.feed = new JetStreamFeed(cluster.link, jsm);
    this.#guard = setInterval(() => void this.#checkRoom(), GUARD_INTERVAL_MS);
    this.#guard.unref();
    void this.#checkRoom();
  }

  static async open(cluster: ClusterMembership, settings: StreamSettings, deps: { log: Logger; registry: Registry; tracer?: Tracer }): Promise<TelemetryStreams> {
    const jsm = await ensureStreams(cluster.link, settings);
    return new TelemetryStreams(cluster, jsm, settings, deps.log, deps.registry, deps.tracer);
  }

  /**
   * The stream drops its oldest readings when full; unstored ones must not be among them. The
   * unstored readings' bytes (writer lag × the stream's mean reading size) past
   * UNSTORED_SHARE of `stream.maxBytes` make the sink refuse new readings until the writers
   * have caught up below it again.
   */
  async #checkRoom(): Promise<void> {
    if (this.#guarding) return;
    this.#guarding = true;
    try {
      const lag = (this.#lag = await this.#measureLag());
      if (lag === undefined) return;
      const { bytes, messages } = (await this.jsm.streams.info(TELEMETRY_STREAM)).state;
      const unstoredBytes = messages > 0 ? lag * (bytes / messages) : 0;
      const refuse = unstoredBytes > UNSTORED_SHARE * this.settings.maxBytes;
      if (refuse !== this.sink.refuse) {
        if (refuse) this.log.error({ lag, unstoredBytes, maxBytes: this.settings.maxBytes }, 'the telemetry stream is nearly full of readings not yet stored: refusing new readings until the store writers catch up (is PostgreSQL reachable?)');
        else this.log.warn({ lag }, 'the store writers caught up: accepting readings again');
      }
      this.sink.refuse = refuse;
    } catch {
      // NATS away: the sink's own publishes fail meanwhile.
    } finally {
      this.#guarding = false;
    }
  }

  /** Registers the store writers and the dead-letter writer as jobs the nodes share (before the cluster starts). */
  runWriters(store: BatchStore, insertDeadLetter: (d: DeadLetter) => Promise<void>, options: WriterOptions): void {
    for (let p = 0; p < STREAM_PARTITIONS; p += 1) {
      this.cluster.sharedSingleton(writerName(p), new PartitionWriter(p, this.cluster.link, this.jsm, store, options, { log: this.log, metrics: this.#metrics, tracer: this.tracer }));
    }
    this.cluster.singleton('dead-letter-writer', new DeadLetterWriter(this.cluster.link, this.jsm, insertDeadLetter, { log: this.log, malformed: () => this.#metrics.malformed() }));
  }

  /** Live streams on this node read the stream while someone watches. */
  fanOutTo(ingest: IngestService): void {
    this.#fanout = new LiveFanout(this.cluster.link, ingest, this.log, () => this.#metrics.malformed(), this.tracer);
    this.#fanout.start();
  }

  /**
   * Removes a device's readings and dead letters from the streams (its data erased or
   * pseudonymised: a consumer reading the stream back must not find them). Returns how many
   * messages went. Readings a store writer had already fetched are stored and erased by the
   * store's own step, which runs after this.
   */
  async purgeDevice(deviceId: string): Promise<number> {
    let purged = 0;
    for (const [stream, filter] of [
      [TELEMETRY_STREAM, deviceSubjects(deviceId)],
      [DEAD_LETTER_STREAM, `${DEAD_LETTER_PREFIX}.*.${subjectToken(deviceId)}`],
    ] as const) {
      purged += (await this.jsm.streams.purge(stream, { filter })).purged;
    }
    return purged;
  }

  /**
   * Readings in the stream not stored yet, over every partition, as last measured (every
   * GUARD_INTERVAL_MS); undefined when NATS did not answer. /metrics and /readyz read this
   * instead of asking NATS again.
   */
  get lag(): number | undefined {
    return this.#lag;
  }

  async #measureLag(): Promise<number | undefined> {
    if (!this.cluster.link.connected) return undefined;
    let total = 0;
    for (let p = 0; p < STREAM_PARTITIONS; p += 1) {
      try {
        const info = await this.jsm.consumers.info(TELEMETRY_STREAM, writerName(p));
        total += info.num_pending + info.num_ack_pending;
      } catch (err) {
        // A partition no writer has started yet: everything in it waits.
        if (!/consumer not found/i.test((err as Error).message)) return undefined;
      }
    }
    return total;
  }

  async stop(): Promise<void> {
    clearInterval(this.#guard);
    await this.#fanout?.stop();
    await this.sink.drain();
    this.sink.close();
  }
}
