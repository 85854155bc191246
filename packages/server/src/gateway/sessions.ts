import type { PeerCertificate } from '../identity/index.js';

/**
 * The live-session table: which device holds a session, on which connection. Transports
 * (the MQTT gateway today) admit every new connection through it, hand it a way to end and to
 * reach that connection, and tell it when the connection is gone; the rest of the platform
 * (rollouts, commands, twin) asks it whether a device is connected and delivers through it.
 *
 * Embedded mode uses `LocalSessionTable` (a map in this process). A cluster implementation
 * keeps the same contract with a shared registry (device → node) and routes deliveries and
 * kicks to the node that holds the session; the transport does not change. Every
 * implementation passes `describeSessionTable` (sessions-contract.ts).
 */
export interface SessionTable {
  /**
   * Admits a new connection of the device named by `connection.peer`: the certificate must be
   * live and the device allowed to connect. On success the session is registered at once (a
   * kick arriving from now on finds it), and an older session of the same device ends with
   * reason `taken_over`.
   */
  admit(connection: SessionConnection): Promise<Admission>;
  /** Whether the device has a live session (in a cluster: on any node, as last seen locally). */
  isConnected(deviceId: string): boolean;
  /** Whether the device's live session is on this node (the same as isConnected on one node). */
  isHere(deviceId: string): boolean;
  /** Delivers to the device's live session; resolves false when it has none (nothing is queued then). */
  publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): Promise<boolean>;
  /**
   * Ends the device's session with `reason`, if it has one and `match` accepts it; resolves
   * whether one was ended. Revocation, suspension and decommissioning events on the bus are
   * turned into kicks by the table itself.
   */
  kick(deviceId: string, reason: KickReason, match?: (session: LiveSession) => boolean): Promise<boolean>;
  /** Sessions held by this process (the transport's own connections). */
  local(): IterableIterator<LiveSession>;
  readonly localCount: number;
  /** Starts listening for the events that end sessions. */
  start(): void;
  /** Stops listening; every local session is marked `server_stopping` (the transport closes them). */
  stop(): void;
}

/**
 * Where a cluster records which node holds each device's session. Claims are ordered: a
 * later claim of the same device (on any node) is a larger number, and the session holding
 * an older one is taken over.
 */
export interface SessionDirectory {
  /** Records that this node now holds the device's session. Rejects when the directory cannot be reached: the session is then refused. */
  claim(deviceId: string): Promise<number>;
  /** The session with `claim` ended here; changes nothing when another node claimed the device since. */
  release(deviceId: string, claim: number): void;
  /** Whether a claim newer than `claim` is known for the device (another node took it while this one was registering). */
  newerClaim(deviceId: string, claim: number): boolean;
}

/** How the platform wants one message to a device sent (MQTT 5 properties; ignored on 3.1.1). */
export interface DeliveryOptions {
  /** Epoch ms after which the message is worthless (MQTT 5 message expiry; a queued one is dropped). */
  readonly expiresAt?: number;
  /** Where the device should answer (MQTT 5 request/response). */
  readonly responseTopic?: string;
  /** Echoed back by the device with its answer. */
  readonly correlationData?: Buffer;
}

/** What a transport gives the table for one connection. */
export interface SessionConnection {
  readonly peer: PeerCertificate;
  /** The device's network address as the listener sees it (through PROXY protocol when trusted); recorded with the connect. */
  readonly address?: string | undefined;
  /** Ends the connection; the transport then reports `closed` on the handle. */
  end(): void;
  /** Sends to the device over this connection; resolves false when that failed. */
  deliver(topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): Promise<boolean>;
}

export interface LiveSession {
  readonly deviceId: string;
  readonly peer: PeerCertificate;
}

/** The transport's hold on an admitted session. */
export interface SessionHandle extends LiveSession {
  /** Why the platform is ending this session, once it decided to (first reason wins). */
  readonly endReason: string | undefined;
  /** Records why the transport is about to end the session (a limit, an ACL refusal); first reason wins. */
  ending(reason: string): void;
  /**
   * The connection is gone. Returns the reason to record for it: the platform's reason when
   * it ended the session, else `transportReason`; undefined when this was already reported.
   * Only the device's current session marks it offline: a session that was taken over leaves
   * its successor alone.
   */
  closed(transportReason: string): string | undefined;
}

export type Admission =
  | { readonly admitted: true; readonly session: SessionHandle }
  | { readonly admitted: false; readonly reason: 'not_admitted'; readonly message: string }
  /** The platform cannot take sessions now (cluster mode: NATS unreachable); the device should retry later. */
  | { readonly admitted: false; readonly reason: 'unavailable'; readonly message: string };

/** Why the platform ends a session. */
export type KickReason =
  | 'certificate_revoked'
  | 'device_suspended'
  | 'device_decommissioned'
  | 'admission_revoked'
  | 'issuer_no_longer_trusted'
  | 'taken_over'
  /** Cluster mode: this node lost its claim on the device while it was cut off from NATS; the device reconnects and claims again. */
  | 'claim_lost'
  /** The node is draining (rolling restart): the device reconnects through the load balancer to another node. */
  | 'node_draining';

const sameSerial = (a: string, b: string) => a.toLowerCase().replace(/^0+/, '') === b.toLowerCase().replace(/^0+/, '');

/** A revocation ends only the session that uses the revoked certificate. */
export const usesSerial = (serial: string) => (s: LiveSession) => sameSerial(s.peer.serial, serial);
