import { randomBytes } from 'node:crypto';

/**
 * W3C Trace Context `traceparent`: version 00, 32 hex trace id, 16 hex parent span id, 2 hex
 * flags; all-zero ids are invalid.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  /** The sender asked for this trace to be recorded (flags bit 0). */
  readonly sampled: boolean;
}

/** A well-formed `traceparent`, or undefined (anything else is ignored, as the W3C spec says). */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (value === undefined) return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  return { traceId: m[1] as string, spanId: m[2] as string, sampled: (Number.parseInt(m[3] as string, 16) & 1) === 1 };
}

export const formatTraceparent = (traceId: string, spanId: string): string => `00-${traceId}-${spanId}-01`;

export const newTraceId = (): string => randomBytes(16).toString('hex');
export const newSpanId = (): string => randomBytes(8).toString('hex');

/** Now, in milliseconds since the epoch with sub-millisecond precision (one clock for every span of a node). */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** Milliseconds since the epoch of a `performance.now()` reading. */
export const epochOf = (hr: number): number => performance.timeOrigin + hr;

export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** One hop of a message through the platform. Times in epoch milliseconds (fractional). */
export interface Span {
  readonly name: string;
  readonly spanId: string;
  /** The message's root span; for the root span, the device's span when it sent a `traceparent`. */
  readonly parentSpanId: string | null;
  /** The node that ran the hop. */
  readonly node: string;
  readonly start: number;
  readonly end: number;
  readonly attributes?: SpanAttributes;
}

/** The spans one node recorded for one message: what is stored and exported. */
export interface TraceRecord {
  readonly traceId: string;
  readonly deviceId: string;
  /** The reading's message id; null when the message never got that far (a payload that did not decode). */
  readonly msgId: string | null;
  readonly node: string;
  readonly spans: readonly Span[];
}

/**
 * The trace of one sampled message on the node that received it. Each `hop` closes a span
 * that began where the previous one ended, so the spans tile the message's time on the node
 * from receipt to acknowledgement; `end` closes the root span and hands the record over.
 * Only sampled messages get one: an unsampled message carries none and costs nothing.
 */
export class MessageTrace {
  readonly traceId: string;
  readonly rootSpanId = newSpanId();
  msgId: string | null = null;
  readonly #spans: Span[] = [];
  readonly #parent: string | null;
  readonly #start: number;
  #mark: number;
  #ended = false;

  constructor(
    readonly deviceId: string,
    readonly node: string,
    receivedAt: number,
    parent: TraceParent | undefined,
    private readonly finished: (record: TraceRecord) => void,
  ) {
    this.traceId = parent?.traceId ?? newTraceId();
    this.#parent = parent?.spanId ?? null;
    this.#start = this.#mark = receivedAt;
  }

  /** The context to pass on (the telemetry stream): this message's root span as parent. */
  get traceparent(): string {
    return formatTraceparent(this.traceId, this.rootSpanId);
  }

  /** Closes the span from the previous hop's end (or receipt) to now. */
  hop(name: string, attributes?: SpanAttributes): void {
    const now = preciseNow();
    this.#spans.push({ name, spanId: newSpanId(), parentSpanId: this.rootSpanId, node: this.node, start: this.#mark, end: now, ...(attributes ? { attributes } : {}) });
    this.#mark = now;
  }

  /** Closes the root span (`telemetry.message`, receipt to now) and records the trace, once. */
  end(attributes?: SpanAttributes): void {
    if (this.#ended) return;
    this.#ended = true;
    const root: Span = {
      name: 'telemetry.message',
      spanId: this.rootSpanId,
      parentSpanId: this.#parent,
      node: this.node,
      start: this.#start,
      end: preciseNow(),
      attributes: { 'bulwark.device_id': this.deviceId, ...(this.msgId !== null ? { 'bulwark.msg_id': this.msgId } : {}), ...attributes },
    };
    this.finished({ traceId: this.traceId, deviceId: this.deviceId, msgId: this.msgId, node: this.node, spans: [root, ...this.#spans] });
  }
}
