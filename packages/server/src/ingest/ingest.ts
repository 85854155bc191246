import type { TelemetryEnvelope } from '@bulwark/protocol';
import type { SchemaProblem } from '../schemas/index.js';
import type { GroupSelector } from '../registry/index.js';
import type { MessageTrace } from '../tracing/index.js';

export type Transport = 'mqtt' | 'http' | 'coap' | 'replay';

/** One message as a transport hands it to the pipeline. */
export interface IngestRequest {
  /** From the verified certificate: never from the payload or the client id. */
  readonly deviceId: string;
  readonly transport: Transport;
  readonly topic: string | null;
  readonly payload: Buffer;
  readonly receivedAt: number;
  /**
   * The sender accepted loss (MQTT QoS 0): under overload, past `ingest.maxPendingMessages`
   * waiting for the store, the message is dropped and counted instead of queued.
   */
  readonly sheddable?: boolean;
  /** The message's trace when it was chosen for tracing (tracing/): the pipeline adds its hops. */
  readonly trace?: MessageTrace | undefined;
}

/** Why a message went to the dead-letter store. */
export type DeadLetterReason = 'invalid_utf8' | 'malformed_json' | 'malformed_cbor' | 'too_deep' | 'forbidden_key' | 'forbidden_character' | 'bad_envelope' | 'unknown_schema' | 'schema_violation';

export type IngestResult =
  { readonly status: 'stored'; readonly ts: number } | { readonly status: 'duplicate' } | { readonly status: 'shed' } | { readonly status: 'dead_lettered'; readonly id: string; readonly reason: DeadLetterReason; readonly problems: readonly SchemaProblem[] };

/** A reading as stored: the device's times, the platform's times, and the data. */
export interface TelemetryRecord {
  readonly deviceId: string;
  readonly msgId: string;
  readonly schemaId: string;
  readonly seq: number | null;
  readonly boot: string | null;
  /** The device's own wall-clock time, as sent. */
  readonly deviceTs: number | null;
  readonly receivedAt: number;
  /** Where the platform places the reading in time. */
  readonly ts: number;
  /** receivedAt - deviceTs, when the device sent a time. */
  readonly skewMs: number | null;
  readonly data: Readonly<Record<string, unknown>>;
}

/** How a schema protects a field at rest (`x-sensitive`). */
export type Sensitivity = 'mask' | 'hash' | 'encrypt';

/**
 * How a dead letter is kept at rest. `whole`: no usable schema (unknown schema, a payload
 * that did not decode, a bad envelope), so the payload and every problem's `got` are one
 * encrypted value each. `fields`: the schema is known; the fields it marks `x-sensitive`
 * are encrypted in place under `data` (whatever their mode: a replay needs the value), and
 * `problems[i]` is the sensitivity of problem i's `got` (null: kept in clear). `none`: stored
 * by a version before dead letters were protected; sealed whole when the server starts.
 */
export type DeadLetterProtection = { readonly kind: 'none' } | { readonly kind: 'whole' } | { readonly kind: 'fields'; readonly fields: Readonly<Record<string, Sensitivity>>; readonly problems: readonly (Sensitivity | null)[] };

export interface DeadLetter {
  readonly id: string;
  readonly deviceId: string;
  readonly transport: Transport;
  readonly topic: string | null;
  readonly receivedAt: number;
  readonly reason: DeadLetterReason;
  readonly problems: readonly SchemaProblem[];
  readonly schemaId: string | null;
  readonly msgId: string | null;
  /**
   * The payload as stored (see `protection`). In clear it is UTF-8 text, or `base64:` and the
   * bytes when it was not valid UTF-8 (CBOR, broken bytes).
   */
  readonly payload: string;
  readonly replayedAt: number | null;
  readonly replayResult: string | null;
  readonly protection: DeadLetterProtection;
}

/** A dead letter as shown: masked (`***` for what is sealed), or revealed for telemetry:decrypt. */
export interface DeadLetterView extends Omit<DeadLetter, 'protection'> {
  readonly protection: DeadLetterProtection['kind'];
  /** Fields under `data` kept encrypted. */
  readonly sealedFields: readonly string[];
  /** True when the sealed parts are shown decrypted. */
  readonly revealed: boolean;
  /** Why a letter asked for in clear is still masked (it could not be decrypted). */
  readonly decryptError?: string;
}

export interface DeadLetterFilter {
  readonly deviceId?: string;
  readonly reason?: DeadLetterReason;
  readonly schemaId?: string;
  /** true: only letters already replayed; false: only letters never replayed. */
  readonly replayed?: boolean;
  /** Only letters of devices in at least one of these groups (a caller limited to groups); none: no letter. */
  readonly within?: readonly GroupSelector[];
  readonly limit: number;
}

/** Which dead letters a purge deletes; every given part must match. */
export interface DeadLetterPurge {
  readonly deviceId?: string;
  readonly reason?: DeadLetterReason;
  readonly schemaId?: string;
  /** Only letters received before this time. */
  readonly beforeMs?: number;
  /** Only letters already replayed (whatever the replay's result). */
  readonly replayed?: boolean;
  /** Only letters of devices in at least one of these groups (a caller limited to groups). */
  readonly within?: readonly GroupSelector[];
}

export interface TelemetryQuery {
  readonly deviceId: string;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly limit: number;
  /** `desc`: newest first (the latest readings); default oldest first. */
  readonly order?: 'asc' | 'desc';
}

/** Minimum, maximum, mean and count of one numeric field over one time bucket. */
export interface Rollup {
  readonly field: string;
  readonly schemaId: string;
  readonly bucketStart: number;
  readonly bucketMs: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

export interface RollupQuery {
  readonly deviceId: string;
  readonly field: string;
  readonly bucketMs: number;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly limit: number;
}

/** Rollup bucket sizes kept for every numeric field: one minute and one hour. */
export const ROLLUP_BUCKETS_MS = [60_000, 3_600_000] as const;

export interface TelemetryRepository {
  /**
   * Inserts the batch in one transaction, and folds every stored reading's numeric fields
   * into the 1-minute and 1-hour rollups in the same transaction (a duplicate changes
   * nothing). True for each record stored, false for a duplicate id.
   */
  insertBatch(records: readonly TelemetryRecord[]): Promise<boolean[]>;
  rollups(q: RollupQuery): Promise<Rollup[]>;
  /** Each device's mean of `field` over its `bucketMs` rollups from `sinceMs` on (devices without any left out). */
  fieldMeans(deviceIds: readonly string[], field: string, bucketMs: number, sinceMs: number): Promise<Map<string, number>>;
  /** Deletes rollup buckets that ended before `cutoffMs`. */
  deleteRollupsBefore(cutoffMs: number): Promise<number>;
  query(q: TelemetryQuery): Promise<TelemetryRecord[]>;
  insertDeadLetter(d: DeadLetter): Promise<void>;
  getDeadLetter(id: string): Promise<DeadLetter | undefined>;
  listDeadLetters(f: DeadLetterFilter): Promise<DeadLetter[]>;
  markReplayed(id: string, at: number, result: string): Promise<void>;
  /** Dead letters stored in clear (protection `none`), oldest first. */
  listUnprotectedDeadLetters(limit: number): Promise<DeadLetter[]>;
  /** Replaces a clear dead letter's payload and problems by their sealed form; false if it was no longer in clear. */
  protectDeadLetter(id: string, sealed: Pick<DeadLetter, 'payload' | 'problems' | 'protection'>): Promise<boolean>;
  /**
   * Rewrites the dead-letter storage so that values replaced in place (clear letters just
   * sealed) leave no copy in freed space: SQLite VACUUM and a truncated WAL, PostgreSQL
   * VACUUM FULL of the table.
   */
  scrubDeadLetterSpace(): Promise<void>;
  /** Schema ids that have stored readings. */
  storedSchemaIds(): Promise<string[]>;
  /** Deletes readings of a schema placed before `cutoffMs`; returns how many. */
  deleteBefore(schemaId: string, cutoffMs: number): Promise<number>;
  /** Deletes dead letters received before `cutoffMs`; returns how many. */
  deleteDeadLettersBefore(cutoffMs: number): Promise<number>;
  /** Deletes the dead letters the purge selects; returns how many. */
  deleteDeadLetters(f: DeadLetterPurge): Promise<number>;
}

/**
 * Where accepted readings and dead letters go. Embedded mode: the store, in group-committed
 * batches. Cluster mode: the replicated telemetry stream, which the store writer, the live
 * fan-out and integrations consume (stream/).
 */
export interface TelemetrySink {
  /**
   * Resolves once the reading is durable; false when the sink recognised it as a repeat.
   * `traceparent` travels with a traced reading (the telemetry stream carries it on).
   */
  append(record: TelemetryRecord, traceparent?: string): Promise<boolean>;
  /** Resolves once the dead letter is durable. */
  appendDeadLetter(letter: DeadLetter): Promise<void>;
  /**
   * True when live listeners hear readings from the sink's own fan-out (every node reads the
   * stream) rather than from the node that accepted them.
   */
  readonly fansOut: boolean;
  /** Writes what is still waiting; for shutdown. */
  drain(): Promise<void>;
}

/** Everything a step can see and add to while one message goes through the pipeline. */
export interface MessageContext {
  readonly request: IngestRequest;
  text?: string;
  body?: unknown;
  envelope?: TelemetryEnvelope;
  record?: TelemetryRecord;
}
