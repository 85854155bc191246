import type { IPublishPacket, ISubscription } from 'mqtt-packet';
import type { MqttConnection } from './connection.js';
import type { ConnectRefusal } from './reason-codes.js';

/** A device's CONNECT, as the gateway needs it. */
export interface ConnectRequest {
  readonly clientId: string;
  readonly version: 4 | 5;
  /** Clean session (3.1.1) or Clean Start (5). */
  readonly clean: boolean;
  /** Seconds the session outlives the connection: MQTT 5's Session Expiry Interval; on 3.1.1 0 when clean, else undefined (the gateway's maximum). */
  readonly sessionExpiryS: number | undefined;
  readonly will: InboundPublish | undefined;
  readonly authenticationMethod: string | undefined;
}

/** A PUBLISH from the device (or its will). */
export interface InboundPublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly correlationData?: Buffer;
  readonly responseTopic?: string;
  /** W3C trace context from the MQTT 5 user property `traceparent`. */
  readonly traceparent?: string;
  /** When the PUBLISH was read (`performance.now()`), for the message's trace. */
  readonly arrivedHr?: number;
}

/**
 * How a publish ended. `code` 0 is accepted. A refusal is answered with its code on MQTT 5
 * QoS 1 (PUBACK with a reason string); where the protocol cannot say it (3.1.1, QoS 0) a
 * `fatal` refusal ends the session and any other is acknowledged as accepted.
 */
export interface PublishOutcome {
  readonly code: number;
  readonly reason?: string;
  readonly detail?: string;
  readonly fatal?: boolean;
  /** Told once the acknowledgement is written (at once for QoS 0): ends a traced message's trace. */
  readonly acked?: () => void;
}

export type ConnectVerdict = { readonly ok: true; readonly sessionPresent: boolean } | { readonly ok: false; readonly refusal: ConnectRefusal; readonly message: string };

/** What the gateway does with a connection's packets. */
export interface ConnectionHandler {
  connect(c: MqttConnection, request: ConnectRequest): Promise<ConnectVerdict>;
  publish(c: MqttConnection, p: InboundPublish): Promise<PublishOutcome> | PublishOutcome;
  /** Granted QoS or a refusal code per subscription (SUBACK). */
  subscribe(c: MqttConnection, subscriptions: readonly ISubscription[]): number[];
  unsubscribe(c: MqttConnection, filters: readonly string[]): number[];
  /** The connection is gone; `will` is set when the device went away without DISCONNECT. */
  closed(c: MqttConnection, reason: string, will: InboundPublish | undefined): void;
  /** A connection ended before it became a session for a reason of the transport's own (malformed, too large, no CONNECT in time). */
  abandoned(c: MqttConnection, reason: string): void;
}

export interface ConnectionLimits {
  /** Largest packet read from a device (remaining length), checked before the packet is buffered. */
  readonly maxPacketBytes: number;
  /** QoS 1 publishes of a device under way at once: Receive Maximum on MQTT 5, a read pause on 3.1.1. */
  readonly receiveMaximum: number;
  readonly topicAliasMaximum: number;
  readonly connectTimeoutMs: number;
  /** Longest MQTT 5 session expiry granted. */
  readonly sessionExpiryMaxS: number;
  /** Messages to the device waiting past its Receive Maximum. */
  readonly outboundQueueLimit: number;
}

/** The protocol level of a CONNECT from its first bytes (fixed header, length, "MQTT", level): 5 or else 4. */
export function levelOf(chunk: Buffer): 4 | 5 {
  let i = 1;
  while (i < 5 && i < chunk.length && (chunk[i] ?? 0) & 0x80) i += 1;
  return chunk[i + 7] === 5 ? 5 : 4;
}

/** The MQTT 5 properties of a publish the gateway uses. */
export function withProperties(m: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean; arrivedHr?: number }, props: NonNullable<IPublishPacket['properties']>): InboundPublish {
  const traceparent = props.userProperties?.traceparent;
  return {
    ...m,
    ...(props.correlationData ? { correlationData: props.correlationData } : {}),
    ...(props.responseTopic ? { responseTopic: props.responseTopic } : {}),
    ...(typeof traceparent === 'string' ? { traceparent } : {}),
  };
}
