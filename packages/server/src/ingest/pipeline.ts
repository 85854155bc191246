import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { Registry } from 'prom-client';
import type { SchemaService } from '../schemas/index.js';
import { DeadLetterSeal } from './dead-letter-seal.js';
import type { DeadLetter, DeadLetterFilter, DeadLetterPurge, DeadLetterView, IngestRequest, IngestResult, MessageContext, Rollup, RollupQuery, TelemetryQuery, TelemetryRecord, TelemetryRepository, TelemetrySink } from './ingest.js';
import { ingestMetrics } from './metrics.js';
import type { Step } from './step.js';
import { storeSink } from './store-sink.js';
import { decode } from './steps/decode.js';
import { dedupe } from './steps/dedupe.js';
import { envelope } from './steps/envelope.js';
import { type FieldProtection, mask } from './steps/mask.js';
import { type ClockSkewTracker, clockSkew, normalizeTime } from './steps/normalize-time.js';
import { sequence } from './steps/sequence.js';
import { validate } from './steps/validate.js';

export interface IngestSettings {
  readonly batchMaxItems: number;
  readonly batchMaxDelayMs: number;
  /** A device clock further off than this is reported as skewed. */
  readonly maxClockSkewMs: number;
  /** Messages under way (decoded, waiting for their batch) past which sheddable ones are dropped. */
  readonly maxPendingMessages: number;
}

/**
 * The telemetry pipeline: decode → envelope → dedupe → sequence → normalizeTime →
 * validate → mask → persist (group commit) → hot path. Every transport calls `accept` and
 * acknowledges only after it resolves; every outcome is counted.
 */
export class IngestService {
  readonly #steps: readonly Step[];
  /** Each step's span name (`pipeline.decode`, …), made once. */
  readonly #spanNames: readonly string[];
  readonly #dedupe: ReturnType<typeof dedupe>;
  readonly #sink: TelemetrySink;
  readonly #metrics: ReturnType<typeof ingestMetrics>;
  readonly #stored = new Set<(r: TelemetryRecord) => void>();
  readonly #accepted = new Set<(r: TelemetryRecord) => void>();
  readonly #deadLettered = new Set<(deviceId: string, reason: string) => void>();
  readonly #linkTrouble = new Set<(deviceId: string, kind: 'lost' | 'duplicate', count: number) => void>();
  /** Told when live listeners appear (true) or the last one goes (false). */
  #interest: ((listening: boolean) => Promise<void> | void) | undefined;
  /** Settles once live listeners hear every reading accepted from now on (cluster mode: the stream is being read). */
  #liveReady: Promise<void> = Promise.resolve();
  readonly #skew: ReturnType<typeof clockSkew>;
  readonly #seal: DeadLetterSeal;
  #pending = 0;
  readonly #outcomes = new Map<string, Map<string, { inc(): void }>>();

  constructor(
    private readonly repo: TelemetryRepository,
    schemas: SchemaService,
    private readonly settings: IngestSettings,
    protection: FieldProtection,
    private readonly deps: { clock: Clock; ids: IdGen; log: Logger; metrics: Registry; sink?: TelemetrySink },
  ) {
    const m = (this.#metrics = ingestMetrics(deps.metrics));
    this.#dedupe = dedupe(() => undefined);
    this.#skew = clockSkew(settings.maxClockSkewMs, () => m.skewedClocks.inc());
    this.#seal = new DeadLetterSeal(schemas, protection);
    this.#steps = [
      decode,
      envelope,
      this.#dedupe,
      sequence({
        lost: (n, deviceId) => {
          m.lost.inc(n);
          this.#tellTrouble(deviceId, 'lost', n);
        },
        outOfOrder: () => m.outOfOrder.inc(),
      }),
      normalizeTime(() => m.implausibleClock.inc(), this.#skew),
      validate(schemas),
      mask(schemas, protection),
    ];
    this.#spanNames = this.#steps.map((step) => `pipeline.${step.name}`);
    this.#sink = deps.sink ?? storeSink(repo, settings, m);
  }

  /** Runs one message through the pipeline; resolves once its outcome is durable. */
  async accept(request: IngestRequest): Promise<IngestResult> {
    if (request.sheddable && this.#pending >= this.settings.maxPendingMessages) {
      this.#count(request.transport, 'shed');
      return { status: 'shed' };
    }
    this.#pending += 1;
    // A traced message (one in tracing.sampleEvery) marks each hop; the others only test `trace`.
    const trace = request.trace;
    if (trace) trace.hop('gateway.receive', { 'bulwark.transport': request.transport });
    // One async function per message (not one per stage): each is a promise and a frame on the hot path.
    try {
      const ctx: MessageContext = { request };
      for (let i = 0; i < this.#steps.length; i += 1) {
        const step = this.#steps[i] as Step;
        // Steps answer synchronously when they can (a compiled schema, a cached field list): no promise hop per step and message.
        let outcome = step.run(ctx);
        if (outcome instanceof Promise) outcome = await outcome;
        if (trace) trace.hop(this.#spanNames[i] as string);
        if (outcome === undefined) continue;
        if (trace && ctx.envelope) trace.msgId = ctx.envelope.id;
        const result = 'done' in outcome ? outcome.done : await this.#deadLetter(ctx, outcome.reject, outcome.problems ?? []);
        if (trace) trace.hop('ingest.outcome', { 'bulwark.outcome': result.status });
        return this.#counted(request, result);
      }
      const record = ctx.record;
      if (!record) throw new PlatformError('BULWARK_ERR_INTERNAL', 'the pipeline produced no record');
      if (trace) trace.msgId = record.msgId;
      const inserted = await this.#sink.append(record, trace?.traceparent);
      if (trace) trace.hop('ingest.commit', { 'bulwark.duplicate': !inserted });
      this.#dedupe.remember(record.deviceId, record.msgId);
      if (!inserted) return this.#counted(request, { status: 'duplicate' });
      if (!this.#sink.fansOut) this.#tell(this.#stored, record);
      if (this.#accepted.size > 0) this.#tell(this.#accepted, record);
      // Embedded: this node's live listeners and alert rules heard it; cluster: the alert rules (live listeners read the stream).
      if (trace) trace.hop(this.#sink.fansOut ? 'alerts.feed' : 'live.fanout', { 'bulwark.listeners': this.#sink.fansOut ? this.#accepted.size : this.#stored.size + this.#accepted.size });
      return this.#counted(request, { status: 'stored', ts: record.ts });
    } finally {
      this.#pending -= 1;
    }
  }

  #counted(request: IngestRequest, result: IngestResult): IngestResult {
    this.#count(request.transport, result.status);
    if (result.status === 'duplicate') this.#tellTrouble(request.deviceId, 'duplicate', 1);
    return result;
  }

  #tellTrouble(deviceId: string, kind: 'lost' | 'duplicate', count: number): void {
    for (const listener of this.#linkTrouble) {
      try {
        listener(deviceId, kind, count);
      } catch (err) {
        this.deps.log.error({ err }, 'a link-trouble listener failed');
      }
    }
  }

  /** Counts a message's outcome through a cached counter child: prom-client hashes a label object on every `inc`. */
  #count(transport: IngestRequest['transport'], outcome: IngestResult['status']): void {
    let byOutcome = this.#outcomes.get(transport);
    if (!byOutcome) this.#outcomes.set(transport, (byOutcome = new Map()));
    let child = byOutcome.get(outcome);
    if (!child) byOutcome.set(outcome, (child = this.#metrics.messages.labels(transport, outcome)));
    child.inc();
  }

  /** Messages in the pipeline now (decoding, or waiting for their batch to be durable). */
  get pending(): number {
    return this.#pending;
  }

  async #deadLetter(ctx: MessageContext, reason: DeadLetter['reason'], problems: DeadLetter['problems']): Promise<IngestResult> {
    const { request } = ctx;
    // Text when the payload decoded as UTF-8; anything else (CBOR, broken bytes) is kept exactly, as base64.
    const text = ctx.text;
    // Stored sealed (dead-letter-seal.ts): the device is told the problems in clear, the store never holds them so.
    const letter = await this.#seal.seal(
      {
        id: this.deps.ids.next('dl'),
        deviceId: request.deviceId,
        transport: request.transport,
        topic: request.topic,
        receivedAt: request.receivedAt,
        reason,
        problems,
        schemaId: ctx.envelope?.schema ?? null,
        msgId: ctx.envelope?.id ?? null,
        payload: text ?? `base64:${request.payload.toString('base64')}`,
        replayedAt: null,
        replayResult: null,
      },
      ctx.envelope,
    );
    await this.#sink.appendDeadLetter(letter);
    this.#metrics.deadLetters.inc({ reason });
    for (const listener of this.#deadLettered) {
      try {
        listener(request.deviceId, reason);
      } catch (err) {
        this.deps.log.error({ err }, 'a dead-letter listener failed');
      }
    }
    return { status: 'dead_lettered', id: letter.id, reason, problems };
  }

  /** Hot path: called with every newly stored reading (live streams, rules). Returns an unsubscribe function. */
  onStored(listener: (r: TelemetryRecord) => void): () => void {
    this.#stored.add(listener);
    if (this.#stored.size === 1 && this.#interest) this.#liveReady = Promise.resolve(this.#interest(true)).catch(() => undefined);
    return () => {
      // The hook may answer with a promise: a failure to stop reading is logged, not left unhandled.
      if (this.#stored.delete(listener) && this.#stored.size === 0) void Promise.resolve(this.#interest?.(false)).catch((err: unknown) => this.deps.log.warn({ err }, 'live interest: stopping the stream reader failed'));
    };
  }

  /**
   * Every reading this node accepted (stored, or acknowledged into the telemetry stream), on
   * this node only: the alert evaluator's feed. Listeners must not block.
   */
  onAccepted(listener: (r: TelemetryRecord) => void): () => void {
    this.#accepted.add(listener);
    return () => void this.#accepted.delete(listener);
  }

  /** Every message this node dead-lettered (the alerts' dead-letter rate), after it was kept. Listeners must not throw or block. */
  onDeadLetter(listener: (deviceId: string, reason: string) => void): void {
    this.#deadLettered.add(listener);
  }

  /**
   * A device's link losing readings (`lost`: a gap in its per-boot sequence, of `count`
   * readings) or repeating them (`duplicate`: a reading already stored, sent again): the
   * alerts' link-quality rule. Listeners must not throw or block.
   */
  onLinkTrouble(listener: (deviceId: string, kind: 'lost' | 'duplicate', count: number) => void): void {
    this.#linkTrouble.add(listener);
  }

  /**
   * Cluster mode: `interest` hears when this node starts or stops having live listeners, so
   * that it reads the telemetry stream for them only while someone here watches.
   */
  onInterest(interest: (listening: boolean) => Promise<void> | void): void {
    this.#interest = interest;
    if (this.#stored.size > 0) this.#liveReady = Promise.resolve(interest(true)).catch(() => undefined);
  }

  /** Resolves once a listener added with `onStored` hears every reading accepted after it (say "ready" to a live client then). */
  liveReady(): Promise<void> {
    return this.#liveReady;
  }

  /** Cluster mode: a reading from the stream's fan-out (any node accepted it), told to this node's live listeners. */
  announce(record: TelemetryRecord): void {
    this.#tell(this.#stored, record);
  }

  #tell(listeners: Iterable<(r: TelemetryRecord) => void>, record: TelemetryRecord): void {
    for (const listener of listeners) {
      try {
        listener(record);
      } catch (err) {
        this.deps.log.error({ err }, 'a telemetry listener failed');
      }
    }
  }

  /** Devices whose clocks are off by more than ingest.maxClockSkewMs, worst first. */
  get clocks(): ClockSkewTracker {
    return this.#skew;
  }

  query(q: TelemetryQuery): Promise<TelemetryRecord[]> {
    return this.repo.query(q);
  }

  rollups(q: RollupQuery): Promise<Rollup[]> {
    return this.repo.rollups(q);
  }

  /**
   * Dead letters, newest first: masked, or with `reveal` in clear as far as their schema
   * allows (the caller checks telemetry:decrypt and audits). A letter that does not decrypt
   * is listed masked with its `decryptError`; the others are still shown.
   */
  async listDeadLetters(f: DeadLetterFilter, reveal = false): Promise<DeadLetterView[]> {
    const letters = await this.repo.listDeadLetters(f);
    return reveal ? Promise.all(letters.map((d) => this.#seal.reveal(d))) : letters.map((d) => this.#seal.mask(d));
  }

  async getDeadLetter(id: string, reveal = false): Promise<DeadLetterView> {
    const d = await this.#letter(id);
    return reveal ? this.#seal.reveal(d) : this.#seal.mask(d);
  }

  /** Deletes the dead letters the purge selects (replayed or no longer wanted); returns how many. */
  purgeDeadLetters(f: DeadLetterPurge): Promise<number> {
    return this.repo.deleteDeadLetters(f);
  }

  async #letter(id: string): Promise<DeadLetter> {
    const d = await this.repo.getDeadLetter(id);
    if (!d) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no dead letter ${id}`);
    return d;
  }

  /**
   * Seals whole every dead letter an older version stored in clear; run at start, before
   * anything is served. Each letter is sealed at most once even when several nodes start
   * together. Returns how many this call sealed.
   */
  async protectClearDeadLetters(): Promise<number> {
    let sealed = 0;
    for (;;) {
      const batch = await this.repo.listUnprotectedDeadLetters(500);
      let changed = 0;
      for (const d of batch) {
        const { payload, problems, protection } = this.#seal.sealWhole(d);
        if (await this.repo.protectDeadLetter(d.id, { payload, problems, protection })) changed += 1;
      }
      sealed += changed;
      if (batch.length < 500 || changed === 0) break;
    }
    // The clear values were overwritten in place: rewrite the storage so no copy lingers in freed pages.
    if (sealed > 0) await this.repo.scrubDeadLetterSpace();
    return sealed;
  }

  /**
   * Runs a dead letter through the pipeline again (after a schema fix, say). Idempotent:
   * the reading's message id makes a second replay a duplicate, never a second copy.
   */
  async replay(id: string): Promise<IngestResult> {
    const letter = await this.#letter(id);
    const payload = await this.#seal.open(letter);
    const result = await this.accept({ deviceId: letter.deviceId, transport: 'replay', topic: letter.topic, payload, receivedAt: letter.receivedAt });
    await this.repo.markReplayed(id, this.deps.clock.now(), result.status);
    return result;
  }

  /** Writes every batch still waiting; for shutdown. */
  drain(): Promise<void> {
    return this.#sink.drain();
  }
}
