import type { TLSSocket } from 'node:tls';
import { type IConnectPacket, type IPublishPacket, type Packet, type Parser, generate } from 'mqtt-packet';
import type { DeliveryOptions } from '../sessions.js';
import type { ConnectVerdict, ConnectionHandler, ConnectionLimits, InboundPublish, PublishOutcome } from './connection-handler.js';
import { levelOf, withProperties } from './connection-handler.js';
import { Outbound } from './outbound.js';
import { packetProblem, strictParser } from './packet-checks.js';
import { CONNECT_CODES, type ConnectRefusal, RC, disconnectCode } from './reason-codes.js';

export type { ConnectRequest, ConnectVerdict, ConnectionHandler, InboundPublish, PublishOutcome } from './connection-handler.js';

interface AckSlot {
  readonly messageId: number;
  readonly qos: 1 | 2;
  outcome: PublishOutcome | undefined;
}

/**
 * One device's MQTT connection over TLS, 3.1.1 or 5 (decided by its CONNECT): the packet
 * codec (`mqtt-packet`), keep-alive, acknowledgements sent in the order the publishes came
 * even though they finish out of order, Receive Maximum both ways, topic aliases, and reads
 * paused while the gateway holds the device back (`hold`). Transport only: what a packet
 * means is the `ConnectionHandler`'s business.
 */
export class MqttConnection {
  version: 4 | 5 = 4;
  clientId = '';
  /** Set by the gateway once the device is admitted. */
  context: unknown;
  #state: 'awaiting_connect' | 'connecting' | 'open' | 'closed' = 'awaiting_connect';
  readonly #parser: Parser;
  readonly #acks: AckSlot[] = [];
  readonly #awaitingRelease = new Set<number>();
  readonly #aliases = new Map<number, string>();
  #outbound: Outbound | undefined;
  #holds = 0;
  #lastSeen = Date.now();
  #keepaliveMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #will: InboundPublish | undefined;
  #closeReason: string | undefined;
  #corked = false;
  #refusedByHandler = false;
  readonly #early: Packet[] = [];

  constructor(
    readonly socket: TLSSocket,
    private readonly handler: ConnectionHandler,
    private readonly limits: ConnectionLimits,
  ) {
    this.#parser = strictParser();
    this.#parser.on('packet', (p: Packet) => this.#onPacket(p));
    this.#parser.on('error', () => this.end('malformed_packet'));
    socket.on('data', (chunk: Buffer) => {
      if (this.#closeReason !== undefined) return;
      this.#lastSeen = Date.now();
      const first = this.#state === 'awaiting_connect' ? chunk : undefined;
      this.#parser.parse(chunk);
      // A packet announced larger than the bound is refused before its body is buffered.
      if ((this.#parser as Parser & { packet: { length: number } }).packet.length > this.limits.maxPacketBytes) {
        if (first && this.#state === 'awaiting_connect') this.#refuseConnect(levelOf(first), 'packet_too_large');
        else this.end('packet_too_large');
      }
    });
    socket.on('error', () => this.#finish('connection_error'));
    socket.on('close', () => this.#finish('connection_error'));
    this.#timer = setTimeout(() => this.end('connect_timeout'), limits.connectTimeoutMs);
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Pauses reads from the socket while any hold is on (the device is over its rate); TCP pushes back on it. */
  hold(on: boolean): void {
    this.#holds += on ? 1 : -1;
    if (this.#holds > 0) this.socket.pause();
    else if (this.#state !== 'closed') this.socket.resume();
  }

  /** Sends a message from the platform; false when it cannot go now (see Outbound). */
  deliver(topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): boolean {
    if (this.#state !== 'open' || !this.#outbound) return false;
    // A device that does not read its socket: past one packet's worth waiting, QoS 0 is dropped; past eight the session ends.
    const waiting = this.socket.writableLength;
    if (waiting > 8 * this.limits.maxPacketBytes) {
      this.end('slow_consumer');
      return false;
    }
    if (qos === 0 && waiting > this.limits.maxPacketBytes) return false;
    return this.#outbound.send(topic, payload, qos, options);
  }

  /**
   * Ends the session with a reason; MQTT 5 devices get a DISCONNECT carrying its code first.
   * The session is over at once (the handler hears of it now); the socket closes once the
   * DISCONNECT is flushed.
   */
  end(reason: string): void {
    if (this.#state === 'closed' || this.#closeReason) return;
    this.#closeReason = reason;
    if (this.version === 5 && this.#state === 'open') {
      this.#write(generate({ cmd: 'disconnect', reasonCode: disconnectCode(reason), properties: { reasonString: reason } }, { protocolVersion: 5 }));
    }
    this.socket.end();
    // A peer that never closes its side is not waited for.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.#finish(reason, false);
  }

  #finish(transportReason: string, destroy = true): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    if (this.#timer) clearTimeout(this.#timer);
    if (destroy) this.socket.destroy();
    if (wasOpen) this.handler.closed(this, this.#closeReason ?? transportReason, this.#closeReason === 'client_disconnected' ? undefined : this.#will);
    else if (!this.#refusedByHandler) this.handler.abandoned(this, this.#closeReason ?? transportReason);
  }

  #write(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    // Packets written in one turn (a batch of acknowledgements) leave in one TLS record.
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  #send(packet: Packet): void {
    this.#write(generate(packet, { protocolVersion: this.version }));
  }

  #onPacket(p: Packet): void {
    if (this.#state === 'closed' || this.#closeReason) return;
    if ((p.length ?? 0) > this.limits.maxPacketBytes) {
      if (this.#state !== 'awaiting_connect') return this.end('packet_too_large');
      return this.#refuseConnect(p.cmd === 'connect' && p.protocolVersion === 5 ? 5 : 4, 'packet_too_large');
    }
    const problem = packetProblem(p);
    if (problem) return this.end(problem);
    if (this.#state === 'awaiting_connect') {
      if (p.cmd !== 'connect') return this.end('protocol_error');
      return void this.#onConnect(p);
    }
    // A client may send on right after its CONNECT: what came in the same read waits for the CONNACK.
    if (this.#state === 'connecting') return void this.#early.push(p);
    if (p.cmd === 'connect') return this.end('protocol_error');
    switch (p.cmd) {
      case 'publish':
        return this.#onPublish(p);
      case 'puback':
        return void this.#outbound?.acknowledged(p.messageId ?? 0);
      case 'pubrel': {
        const known = this.#awaitingRelease.delete(p.messageId ?? 0);
        return this.#send({ cmd: 'pubcomp', messageId: p.messageId ?? 0, ...(this.version === 5 && !known ? { reasonCode: 0x92 } : {}) });
      }
      case 'subscribe': {
        const granted = this.handler.subscribe(this, p.subscriptions);
        return this.#send({ cmd: 'suback', messageId: p.messageId ?? 0, granted });
      }
      case 'unsubscribe': {
        const codes = this.handler.unsubscribe(this, p.unsubscriptions);
        return this.#send({ cmd: 'unsuback', messageId: p.messageId ?? 0, granted: this.version === 5 ? codes : [] });
      }
      case 'pingreq':
        return this.#send({ cmd: 'pingresp' });
      case 'disconnect':
        // MQTT 5 reason 0x04: disconnect with the will message.
        this.#closeReason = (p.reasonCode ?? 0) === 0x04 ? 'client_disconnected_with_will' : 'client_disconnected';
        this.socket.end();
        return;
      default:
        return this.end('protocol_error');
    }
  }

  async #onConnect(p: IConnectPacket): Promise<void> {
    this.#state = 'connecting';
    // Nothing more is read until the device is admitted or refused.
    this.hold(true);
    this.version = p.protocolVersion === 5 ? 5 : 4;
    this.clientId = p.clientId;
    const props = p.properties ?? {};
    const will = p.will
      ? {
          topic: p.will.topic,
          payload: Buffer.isBuffer(p.will.payload) ? p.will.payload : Buffer.from(p.will.payload),
          qos: p.will.qos ?? 0,
          retain: p.will.retain === true,
        }
      : undefined;
    const sessionExpiryS = this.version === 5 ? Math.min(props.sessionExpiryInterval ?? 0, this.limits.sessionExpiryMaxS) : p.clean === false ? undefined : 0;
    let verdict: ConnectVerdict;
    try {
      verdict = await this.handler.connect(this, {
        clientId: p.clientId,
        version: this.version,
        clean: p.clean !== false,
        sessionExpiryS,
        will,
        authenticationMethod: props.authenticationMethod,
      });
    } catch {
      verdict = { ok: false, refusal: 'admission_failed', message: 'the server could not admit the device' };
    }
    if ((this.#state as string) === 'closed') {
      // Gone while it was being admitted: the admitted session ends here.
      if (verdict.ok) this.handler.closed(this, this.#closeReason ?? 'connection_error', undefined);
      return;
    }
    if (!verdict.ok) {
      this.#refusedByHandler = true;
      return this.#refuseConnect(this.version, verdict.refusal, verdict.message);
    }
    this.#will = will;
    this.#state = 'open';
    this.#outbound = new Outbound(this.version, Math.max(1, Math.min(props.receiveMaximum ?? 65535, this.limits.receiveMaximum)), props.maximumPacketSize ?? Number.MAX_SAFE_INTEGER, this.limits.outboundQueueLimit, Date.now, (b) => this.#write(b));
    this.#send(
      this.version === 5
        ? {
            cmd: 'connack',
            sessionPresent: verdict.sessionPresent,
            reasonCode: RC.success,
            properties: {
              receiveMaximum: this.limits.receiveMaximum,
              maximumQoS: 1,
              retainAvailable: false,
              maximumPacketSize: this.limits.maxPacketBytes,
              topicAliasMaximum: this.limits.topicAliasMaximum,
              wildcardSubscriptionAvailable: true,
              sharedSubscriptionAvailable: false,
              subscriptionIdentifiersAvailable: false,
              ...(sessionExpiryS !== undefined && sessionExpiryS !== (props.sessionExpiryInterval ?? 0) ? { sessionExpiryInterval: sessionExpiryS } : {}),
            },
          }
        : { cmd: 'connack', sessionPresent: verdict.sessionPresent, returnCode: 0 },
    );
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if ((p.keepalive ?? 0) > 0) {
      this.#keepaliveMs = (p.keepalive ?? 0) * 1500;
      this.#timer = setTimeout(this.#checkKeepalive, this.#keepaliveMs);
    }
    for (const early of this.#early.splice(0)) this.#onPacket(early);
    this.hold(false);
  }

  #refuseConnect(version: 4 | 5, refusal: ConnectRefusal, message: string = refusal): void {
    const codes = CONNECT_CODES[refusal];
    this.#write(generate(version === 5 ? { cmd: 'connack', sessionPresent: false, reasonCode: codes.v5, properties: { reasonString: message } } : { cmd: 'connack', sessionPresent: false, returnCode: codes.v4 }, { protocolVersion: version }));
    this.#closeReason = refusal;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  readonly #checkKeepalive = (): void => {
    const quiet = Date.now() - this.#lastSeen;
    if (quiet >= this.#keepaliveMs) return this.end('keepalive_timeout');
    this.#timer = setTimeout(this.#checkKeepalive, this.#keepaliveMs - quiet);
  };

  #onPublish(p: IPublishPacket): void {
    const props = p.properties ?? {};
    if (this.version === 5) {
      if (p.retain) return this.end('retain_not_supported');
      if (p.qos === 2) return this.end('qos_not_supported');
    }
    let topic = p.topic;
    if (props.topicAlias !== undefined) {
      const alias = props.topicAlias;
      if (alias < 1 || alias > this.limits.topicAliasMaximum) return this.end('topic_alias_invalid');
      if (topic.length > 0) this.#aliases.set(alias, topic);
      else topic = this.#aliases.get(alias) ?? '';
    }
    // An empty topic without an alias for it [MQTT-4.7.3-1], MQTT 5 3.3.2.3.4.
    if (topic.length === 0) return this.end('protocol_error');
    const messageId = p.messageId ?? 0;
    if (p.qos === 2 && this.#awaitingRelease.has(messageId)) {
      // A QoS 2 publish sent again before its release: already handled, acknowledged again.
      return this.#send({ cmd: 'pubrec', messageId });
    }
    let slot: AckSlot | undefined;
    if (p.qos > 0) {
      if (this.#acks.length >= this.limits.receiveMaximum) {
        if (this.version === 5) return this.end('receive_maximum_exceeded');
      }
      slot = { messageId, qos: p.qos as 1 | 2, outcome: undefined };
      this.#acks.push(slot);
      // Past the bound a 3.1.1 device is not read until acknowledgements go out.
      if (this.#acks.length === this.limits.receiveMaximum) this.hold(true);
    }
    const payload = Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload);
    const arrivedHr = performance.now();
    const message: InboundPublish = p.properties === undefined ? { topic, payload, qos: p.qos, retain: p.retain, arrivedHr } : withProperties({ topic, payload, qos: p.qos, retain: p.retain, arrivedHr }, props);
    let result: Promise<PublishOutcome> | PublishOutcome;
    try {
      result = this.handler.publish(this, message);
    } catch {
      return this.end('handler_failed');
    }
    if (result instanceof Promise)
      result.then(
        (outcome) => this.#settle(slot, outcome),
        () => this.end('handler_failed'),
      );
    else this.#settle(slot, result);
  }

  #settle(slot: AckSlot | undefined, outcome: PublishOutcome): void {
    if (outcome.code !== 0 && outcome.fatal) {
      outcome.acked?.();
      return this.end(outcome.reason ?? 'publish_refused');
    }
    if (slot) {
      slot.outcome = outcome;
      this.#flushAcks();
    } else outcome.acked?.();
  }

  /** Acknowledgements leave in the order their publishes arrived. */
  #flushAcks(): void {
    const wasFull = this.#acks.length >= this.limits.receiveMaximum;
    while (this.#acks.length > 0 && this.#acks[0]?.outcome) {
      const slot = this.#acks.shift() as AckSlot;
      const o = slot.outcome as PublishOutcome;
      const refused = this.version === 5 && o.code !== 0;
      const properties = refused ? { reasonString: o.detail ? `${o.reason ?? 'refused'}: ${o.detail}`.slice(0, 256) : (o.reason ?? 'refused') } : undefined;
      if (slot.qos === 2 && !refused) this.#awaitingRelease.add(slot.messageId);
      if (slot.qos === 1 && !refused) {
        // The common acknowledgement, written directly: fixed header, length 2, packet id (same bytes in both versions).
        const ack = Buffer.allocUnsafe(4);
        ack[0] = 0x40;
        ack[1] = 2;
        ack.writeUInt16BE(slot.messageId, 2);
        this.#write(ack);
        o.acked?.();
        continue;
      }
      this.#send({ cmd: slot.qos === 1 ? 'puback' : 'pubrec', messageId: slot.messageId, ...(refused ? { reasonCode: o.code, properties } : {}) } as Packet);
      o.acked?.();
    }
    if (wasFull && this.#acks.length < this.limits.receiveMaximum) this.hold(false);
  }
}
