import { type MsgHdrs, type NatsConnection, type Subscription, createInbox, headers } from '@nats-io/transport-node';

/** The stream's acknowledgement of one message. */
export interface StreamAck {
  readonly seq: number;
  readonly duplicate: boolean;
}

interface Waiting {
  readonly resolve: (ack: StreamAck) => void;
  readonly reject: (err: Error) => void;
  readonly deadline: number;
}

interface Outgoing {
  readonly subject: string;
  readonly body: string;
  readonly msgId: string;
  readonly waiting: Waiting;
}

/** How often appends past their deadline are failed. */
const SWEEP_MS = 250;

/**
 * Appends messages to JetStream streams at a rate a request per message cannot keep up
 * with on a small node: each message is a plain publish whose reply subject is a token under
 * one inbox subscription, the publishes of one event-loop turn leave in one socket write
 * (gathered until `setImmediate`, after the turn's socket reads), and one timer fails the
 * appends whose acknowledgement did not come in time. What the NATS client does per request
 * instead — a timer, a promise chain, an inbox entry and a stack trace — cost a cluster node
 * about a fifth of its CPU at 5k readings/s.
 *
 * Errors say what the request path's would, so callers tell a stream without a leader ("no
 * responders", "timeout": wait and send again) from a refusal (the stream's own error).
 */
export class StreamPublisher {
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #waiting = new Map<string, Waiting>();
  readonly #sweep: NodeJS.Timeout;
  #queue: Outgoing[] = [];
  #next = 0;
  #closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.#inbox = createInbox();
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (err, msg) => (err ? this.#failAll(err) : this.#answer(msg.subject, msg.data, msg.headers)) });
    this.#sweep = setInterval(() => this.#expire(), SWEEP_MS);
    this.#sweep.unref();
  }

  /** Resolves once the stream holds the message (or had it already: `duplicate`). */
  publish(subject: string, body: string, msgId: string): Promise<StreamAck> {
    if (this.#closed) return Promise.reject(new Error('the stream publisher is closed'));
    return new Promise<StreamAck>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ subject, body, msgId, waiting: { resolve, reject, deadline: performance.now() + this.timeoutMs } });
    });
  }

  /**
   * Fails what waits for an acknowledgement (with a message callers take as a timeout, so they
   * send again): after a reconnect, the appends sent to the server that went away will never
   * be answered, and waiting out their deadline only delays the devices' acknowledgements. A
   * message the stream did take is acknowledged again as a duplicate (same Nats-Msg-Id).
   */
  failWaiting(reason: string): void {
    this.#failAll(new Error(`timeout: ${reason}`));
  }

  /** Fails what still waits and stops listening. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#sub.unsubscribe();
    this.#failAll(new Error('the stream publisher is closed'));
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    if (this.#closed) {
      for (const out of queue) out.waiting.reject(new Error('the stream publisher is closed'));
      return;
    }
    for (const out of queue) {
      const token = (this.#next++).toString(36);
      const h: MsgHdrs = headers();
      h.set('Nats-Msg-Id', out.msgId);
      try {
        this.nc.publish(out.subject, out.body, { reply: `${this.#inbox}.${token}`, headers: h });
        this.#waiting.set(token, out.waiting);
      } catch (err) {
        out.waiting.reject(err as Error);
      }
    }
  }

  #answer(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined): void {
    const token = subject.slice(this.#inbox.length + 1);
    const waiting = this.#waiting.get(token);
    if (!waiting) return; // expired already
    this.#waiting.delete(token);
    if (data.length === 0 && hdrs?.code === 503) {
      waiting.reject(new Error('no responders: the stream has no leader or does not take this subject'));
      return;
    }
    try {
      const ack = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; description?: string } };
      if (ack.error) waiting.reject(new Error(`the stream refused the message: ${ack.error.description ?? 'no reason given'} (${ack.error.code ?? '?'})`));
      else if (typeof ack.stream !== 'string' || typeof ack.seq !== 'number') waiting.reject(new Error('invalid ack response'));
      else waiting.resolve({ seq: ack.seq, duplicate: ack.duplicate === true });
    } catch {
      waiting.reject(new Error('invalid ack response'));
    }
  }

  #expire(): void {
    const now = performance.now();
    // In the order they were sent, so in the order of their deadlines.
    for (const [token, waiting] of this.#waiting) {
      if (waiting.deadline > now) break;
      this.#waiting.delete(token);
      waiting.reject(new Error('timeout: the stream did not acknowledge the message in time'));
    }
  }

  #failAll(err: Error): void {
    for (const waiting of this.#waiting.values()) waiting.reject(err);
    this.#waiting.clear();
  }
}
