import { type Logger, PlatformError } from '@bulwark/core';
import { DiscardPolicy, type JetStreamManager, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { DeadLetter, TelemetryRecord, TelemetrySink } from '../ingest/index.js';
import { type NatsLink, whileElecting } from '../cluster/index.js';
import { StreamPublisher } from './publisher.js';
import { DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, TELEMETRY_PREFIX, TELEMETRY_STREAM, deadLetterSubject, fromSubjectToken, streamMsgId, telemetrySubject } from './subjects.js';

export interface StreamSettings {
  /** NATS servers keeping a copy of each stream (cluster.replicas). */
  readonly replicas: number;
  /** How long the stream keeps readings (after they are stored, too: consumers and replays read them). */
  readonly maxAgeMs: number;
  /** Bytes the stream may hold; the oldest (stored) readings make room, and new ones are refused while unstored ones would be pushed out. */
  readonly maxBytes: number;
  /** Window in which the stream drops a repeat of a message id. */
  readonly duplicateWindowMs: number;
}

const nanos = (ms: number): number => ms * 1_000_000;

/**
 * Makes (or updates) the telemetry and dead-letter streams. Limits retention (not a work
 * queue): the store writer, the live fan-out, webhooks and applications each read them with
 * their own consumer. Discard `old`: in normal running the stream is full of stored readings,
 * and the oldest make room. What keeps an unstored reading from being pushed out is the
 * sink, which refuses new readings while the unstored ones fill most of the stream
 * (`StreamSink.refuse`, set by TelemetryStreams' guard).
 */
export async function ensureStreams(link: NatsLink, s: StreamSettings): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(link.nc);
  const common = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: s.replicas,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.maxAgeMs),
    max_bytes: s.maxBytes,
    duplicate_window: nanos(Math.min(s.duplicateWindowMs, s.maxAgeMs)),
  };
  for (const [name, prefix] of [
    [TELEMETRY_STREAM, TELEMETRY_PREFIX],
    [DEAD_LETTER_STREAM, DEAD_LETTER_PREFIX],
  ] as const) {
    const config = { name, subjects: [`${prefix}.>`], ...common };
    await whileElecting(async () => {
      try {
        await jsm.streams.info(name);
        await jsm.streams.update(name, config);
      } catch (err) {
        if (!/stream not found/i.test((err as Error).message)) throw err;
        await jsm.streams.add(config);
      }
    });
  }
  return jsm;
}

/**
 * Cluster mode's ingest sink: a reading is acknowledged to its device once the telemetry
 * stream has it (replicated, when `cluster.replicas` > 1). `Nats-Msg-Id` is device/message
 * id, so a retry inside the duplicate window is dropped by the stream; later repeats are
 * dropped by the store (its key is device and message id) and by consumers.
 */
export class StreamSink implements TelemetrySink {
  readonly fansOut = true;
  readonly #publisher: StreamPublisher;
  readonly #unwatch: () => void;
  #inFlight = 0;
  /**
   * Set while the readings the store writers have not stored fill most of the stream: a new
   * one is refused (the device keeps it and retries) rather than let the stream push out an
   * unstored one.
   */
  refuse = false;
  #idle: (() => void) | undefined;

  constructor(
    link: NatsLink,
    private readonly log: Logger,
    private readonly appended: (seconds: number) => void = () => undefined,
  ) {
    this.#publisher = new StreamPublisher(link.nc, 5_000);
    this.#unwatch = link.onReconnect(() => this.#publisher.failWaiting('the NATS connection was lost before the stream acknowledged; sending again'));
  }

  async append(record: TelemetryRecord, traceparent?: string): Promise<boolean> {
    if (this.refuse) throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', 'the telemetry stream is nearly full of readings the store has not taken yet: not acknowledged, send it again later');
    const started = performance.now();
    // A traced reading carries its trace context, so the store writer and every node's live fan-out add their hops.
    const body = traceparent === undefined ? JSON.stringify(record) : JSON.stringify({ ...record, traceparent });
    const ack = await this.#publish(telemetrySubject(record.schemaId, record.deviceId), body, streamMsgId(record.deviceId, record.msgId));
    this.appended((performance.now() - started) / 1000);
    return !ack.duplicate;
  }

  async appendDeadLetter(letter: DeadLetter): Promise<void> {
    await this.#publish(deadLetterSubject(letter.reason, letter.deviceId), JSON.stringify(letter), letter.id);
  }

  async #publish(subject: string, body: string, msgId: string): Promise<{ duplicate: boolean }> {
    this.#inFlight += 1;
    try {
      // A stream without a leader (a NATS server died) elects one within seconds: the device's acknowledgement waits.
      return await whileElecting(() => this.#publisher.publish(subject, body, msgId));
    } catch (err) {
      // The subject's last token is the device: logged apart as deviceId, the field the log's pseudonyms know.
      this.log.warn({ err: (err as Error).message, subject: `${subject.slice(0, subject.lastIndexOf('.'))}.*`, deviceId: fromSubjectToken(subject.slice(subject.lastIndexOf('.') + 1)) }, 'the telemetry stream did not take a message: not acknowledged');
      throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `the telemetry stream did not take the message: ${(err as Error).message}`, { cause: err });
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#idle?.();
    }
  }

  /** Waits for the appends under way (each is acknowledged by the stream or fails). */
  async drain(): Promise<void> {
    if (this.#inFlight === 0) return;
    await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  /** After drain: stops publishing (what is appended later fails). */
  close(): void {
    this.#unwatch();
    this.#publisher.close();
  }
}
