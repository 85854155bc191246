import { type IPublishPacket, generate } from 'mqtt-packet';
import type { DeliveryOptions } from '../sessions.js';

interface Waiting {
  readonly topic: string;
  readonly payload: Buffer;
  readonly options: DeliveryOptions | undefined;
}

/**
 * Messages from the platform to one connection: packet ids for QoS 1, the device's Receive
 * Maximum honoured (messages past it wait, in order, and expire while they wait), and the
 * device's Maximum Packet Size (a message that would break it is not sent).
 */
export class Outbound {
  readonly #inflight = new Set<number>();
  readonly #waiting: Waiting[] = [];
  #nextId = 1;

  constructor(
    private readonly version: 4 | 5,
    /** The device's Receive Maximum (MQTT 5), or the gateway's own bound on 3.1.1. */
    private readonly receiveMaximum: number,
    private readonly maximumPacketSize: number,
    private readonly maxWaiting: number,
    private readonly now: () => number,
    private readonly write: (bytes: Buffer) => void,
  ) {}

  /** Sends or queues; false when the message cannot go (expired, too large for the device, queue full). */
  send(topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): boolean {
    if (qos === 0) return this.#write(topic, payload, 0, undefined, options);
    if (this.#inflight.size < this.receiveMaximum && this.#waiting.length === 0) return this.#write(topic, payload, 1, this.#allocate(), options);
    if (this.#waiting.length >= this.maxWaiting) return false;
    this.#waiting.push({ topic, payload, options });
    return true;
  }

  /** The device acknowledged a QoS 1 message; the next waiting one goes. */
  acknowledged(messageId: number): boolean {
    if (!this.#inflight.delete(messageId)) return false;
    while (this.#waiting.length > 0 && this.#inflight.size < this.receiveMaximum) {
      const next = this.#waiting.shift() as Waiting;
      const id = this.#allocate();
      if (!this.#write(next.topic, next.payload, 1, id, next.options)) this.#inflight.delete(id);
    }
    return true;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  #allocate(): number {
    while (this.#inflight.has(this.#nextId)) this.#nextId = (this.#nextId % 65535) + 1;
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 65535) + 1;
    this.#inflight.add(id);
    return id;
  }

  #write(topic: string, payload: Buffer, qos: 0 | 1, messageId: number | undefined, o: DeliveryOptions | undefined): boolean {
    const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos, retain: false, dup: false };
    if (messageId !== undefined) packet.messageId = messageId;
    if (this.version === 5 && o) {
      const properties: NonNullable<IPublishPacket['properties']> = {};
      if (o.expiresAt !== undefined) {
        const left = Math.ceil((o.expiresAt - this.now()) / 1000);
        if (left <= 0) return this.#drop(messageId);
        properties.messageExpiryInterval = left;
      }
      if (o.responseTopic !== undefined) properties.responseTopic = o.responseTopic;
      if (o.correlationData !== undefined) properties.correlationData = o.correlationData;
      packet.properties = properties;
    } else if (o?.expiresAt !== undefined && o.expiresAt <= this.now()) {
      return this.#drop(messageId);
    }
    const bytes = generate(packet, { protocolVersion: this.version });
    if (bytes.length > this.maximumPacketSize) return this.#drop(messageId);
    this.write(bytes);
    return true;
  }

  #drop(messageId: number | undefined): false {
    if (messageId !== undefined) this.#inflight.delete(messageId);
    return false;
  }
}
