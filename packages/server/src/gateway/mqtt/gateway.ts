import { type TLSSocket, type Server as TlsServer, createServer } from 'node:tls';
import type { Clock, Logger } from '@bulwark/core';
import type { ISubscription } from 'mqtt-packet';
import type { Registry } from 'prom-client';
import type { EventBus } from '../../bus/index.js';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';
import type { AddressRange } from '../../config/index.js';
import { DeviceListener } from '../device-listener.js';
import { DeviceTls, tlsRefusalReason } from '../device-tls.js';
import type { IngestService } from '../../ingest/index.js';
import type { DeviceInbox } from '../device-inbox.js';
import type { RegistryService } from '../../registry/index.js';
import { publishDenial, subscribeDenial } from './acl.js';
import { type ConnectRequest, type ConnectVerdict, type InboundPublish, MqttConnection, type PublishOutcome } from './connection.js';
import { PublishFlow } from './flow-control.js';
import { type MqttMetrics, mqttMetrics } from './metrics.js';
import { peerOf } from './peer.js';
import { PublishHandler } from './publish-handler.js';
import { publishRefusal } from './publish-checks.js';
import { RC, pubackCode } from './reason-codes.js';
import { type DeviceSession, DeviceSessions, matchingQos, validFilter } from './subscriptions.js';
import { TokenBuckets } from './token-bucket.js';
import { TurnBudget } from './turn-budget.js';
import type { DeliveryOptions, SessionHandle, SessionTable } from '../sessions.js';
import { LocalSessionTable } from '../sessions-local.js';
import type { Tracer } from '../../tracing/index.js';

export interface MqttSettings {
  readonly host: string;
  readonly port: number;
  /** Extra DNS names or addresses for the server certificate (localhost and 127.0.0.1 are always in it). */
  readonly hostnames: readonly string[];
  readonly maxPayloadBytes: number;
  readonly maxTopicLength: number;
  readonly maxTopicLevels: number;
  readonly publishRatePerSecond: number;
  readonly publishBurst: number;
  /** Held publishes of one session past which it is disconnected (the hard abuse bound). */
  readonly publishBacklogLimit: number;
  /** Publishes handed to handlers in one event-loop turn, over all sessions. */
  readonly publishesPerTurn: number;
  /** QoS 1 publishes of one device under way at once (MQTT 5 Receive Maximum, announced; on 3.1.1 reads pause there). */
  readonly receiveMaximum: number;
  /** Longest time a session (subscriptions) is kept for a device that is away. */
  readonly sessionExpiryMaxSeconds: number;
  /** Subscriptions one session may hold (each is kept while the session lives and matched on every delivery). */
  readonly maxSubscriptionsPerSession: number;
  /** TCP load balancers whose connections start with a PROXY protocol v2 header (none: off). */
  readonly proxyProtocolFrom?: readonly AddressRange[];
}

/** What the gateway keeps per admitted connection. */
interface Live {
  readonly peer: PeerCertificate;
  readonly handle: SessionHandle;
  readonly flow: PublishFlow;
  readonly session: DeviceSession;
  readonly expiryS: number;
  /** Publishes of this connection waiting for a later turn of the event loop; while there are any, it is not read. */
  deferred: number;
  /** The last topic this connection published to that passed the topic checks (they depend on topic and device only). */
  allowedTopic: string | undefined;
}

const KICKS = new Set(['certificate_revoked', 'device_suspended', 'device_decommissioned', 'admission_revoked', 'issuer_no_longer_trusted']);

/**
 * The MQTT device gateway, 3.1.1 and 5 on one listener: a TLS server that demands a client
 * certificate from the platform's CA (checked against its CRL), identity from that
 * certificate, a per-device topic ACL, size and rate limits, and reason codes on every
 * refusal where the device speaks MQTT 5. Not a general broker: devices never talk to each
 * other, so there is no routing between sessions (decision 0014).
 */
export class MqttGateway {
  #server: TlsServer | undefined;
  #listener: DeviceListener | undefined;
  readonly #connections = new Set<MqttConnection>();
  readonly #live = new WeakMap<MqttConnection, Live>();
  readonly #sessions: SessionTable;
  readonly #kept: DeviceSessions;
  readonly #buckets: TokenBuckets;
  readonly #budget: TurnBudget;
  readonly #metrics: MqttMetrics;
  readonly #handler: PublishHandler;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #tls: DeviceTls;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: MqttSettings,
    private readonly deps: {
      identity: IdentityService;
      registry: RegistryService;
      bus: EventBus;
      clock: Clock;
      log: Logger;
      metrics: Registry;
      ingest?: IngestService;
      inbox?: DeviceInbox;
      /** The live-session table (admission, takeover, kicks, delivery); one of this process by default. */
      sessions?: SessionTable;
      /** Per-device publish budgets, shared with the other device transports; the gateway's own by default. */
      deviceRate?: TokenBuckets;
      /** Traces the sampled telemetry messages; none: no tracing. */
      tracer?: Tracer;
    },
  ) {
    this.#metrics = mqttMetrics(deps.metrics);
    this.#tls = new DeviceTls(deps.identity, settings.hostnames, deps.clock);
    this.#sessions = deps.sessions ?? new LocalSessionTable({ identity: deps.identity, registry: deps.registry, bus: deps.bus, log: deps.log });
    this.#buckets = deps.deviceRate ?? new TokenBuckets(deps.clock, settings.publishRatePerSecond, settings.publishBurst);
    this.#budget = new TurnBudget(settings.publishesPerTurn);
    this.#kept = new DeviceSessions(() => deps.clock.now());
    this.#handler = new PublishHandler(deps);
  }

  /** Largest packet read from a device: the payload bound plus its topic and properties. */
  get maxPacketBytes(): number {
    return this.settings.maxPayloadBytes + this.settings.maxTopicLength + 1024;
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    // No Nagle: a CONNACK or PUBACK is one small write that must not wait for the device's next ACK (about 40 ms on TLS 1.3).
    const tlsServer = createServer({ ...(await this.#tls.serverOptions()), noDelay: true });
    this.#server = tlsServer;
    const listener = new DeviceListener(tlsServer, { name: 'mqtt', proxyProtocolFrom: this.settings.proxyProtocolFrom ?? [], log: this.deps.log, metrics: this.deps.metrics, noDelay: true });
    this.#listener = listener;
    const limits = {
      maxPacketBytes: this.maxPacketBytes,
      receiveMaximum: this.settings.receiveMaximum,
      topicAliasMaximum: 16,
      connectTimeoutMs: 30_000,
      sessionExpiryMaxS: this.settings.sessionExpiryMaxSeconds,
      outboundQueueLimit: 1000,
    };
    const handler = {
      connect: (c: MqttConnection, r: ConnectRequest) => this.#connect(c, r),
      publish: (c: MqttConnection, p: InboundPublish) => this.#publish(c, p),
      subscribe: (c: MqttConnection, subs: readonly ISubscription[]) => this.#subscribe(c, subs),
      unsubscribe: (c: MqttConnection, filters: readonly string[]) => filters.map((f) => (this.#live.get(c)?.session.filters.delete(f) ? RC.success : RC.noSubscriptionExisted)),
      closed: (c: MqttConnection, reason: string, will: InboundPublish | undefined) => this.#closed(c, reason, will),
      abandoned: (c: MqttConnection, reason: string) => {
        // A client that closes its side before CONNECT is not a refusal.
        if (reason === 'connection_error') return;
        this.#metrics.connectRefused.inc({ reason });
        this.deps.log.info({ remote: listener.remoteOf(c.socket), reason }, 'MQTT connection ended before CONNECT');
      },
    };
    tlsServer.on('secureConnection', (socket: TLSSocket) => {
      const c = new MqttConnection(socket, handler, limits);
      this.#connections.add(c);
      socket.once('close', () => this.#connections.delete(c));
    });
    tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket) => {
      const reason = tlsRefusalReason(socket, err);
      this.#metrics.tlsRefused.inc({ reason });
      this.deps.log.info({ remote: listener.remoteOf(socket), reason, err: err.message }, 'TLS handshake refused');
    });
    this.#unsubscribe.push(this.#tls.onTrustChanged(() => this.#reloadContext()));
    this.#sessions.start();
    this.#sweeper = setInterval(() => this.#kept.sweep(), 60_000).unref();
    return listener.listen(this.settings.port, this.settings.host);
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sessions.stop();
    const server = this.#server;
    const closing = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const front = this.#listener?.close();
    const gone = [...this.#connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.socket.destroyed) return resolve();
          c.socket.once('close', () => resolve());
          c.end('server_stopping');
        }),
    );
    await Promise.all([closing, front, ...gone]);
  }

  /** Sessions held by this gateway. */
  get sessionCount(): number {
    return this.#sessions.localCount;
  }

  /** Whether the device has a live session (asks the session table). */
  isConnected(deviceId: string): boolean {
    return this.#sessions.isConnected(deviceId);
  }

  /**
   * Publishes from the platform to a connected device's own topic, through the session table;
   * resolves false when the device has no session or no subscription for the topic (nothing is queued then).
   */
  publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): Promise<boolean> {
    return this.#sessions.publishToDevice(deviceId, topic, payload, qos, options);
  }

  async #reloadContext(): Promise<void> {
    if (!this.#server) return;
    await this.#tls.reload(this.#server);
    // Sessions whose issuer is no longer trusted (a manufacturer CA was disabled) end now.
    for (const s of [...this.#sessions.local()]) {
      if (!this.#tls.trustsIssuer(s.peer.issuerFingerprint)) await this.#sessions.kick(s.deviceId, 'issuer_no_longer_trusted', (x) => x === s);
    }
  }

  /** Sends to the connection what its subscriptions ask for; false when none matches. */
  #send(c: MqttConnection, topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions, fromDevice = false): boolean {
    const live = this.#live.get(c);
    const granted = live && matchingQos(live.session, topic, fromDevice);
    if (granted === undefined) return false;
    return c.deliver(topic, payload, Math.min(qos, granted) as 0 | 1, options);
  }

  async #connect(c: MqttConnection, r: ConnectRequest): Promise<ConnectVerdict> {
    const peer = peerOf(c.socket);
    const fail = (refusal: Exclude<ConnectVerdict, { ok: true }>['refusal'], message: string, metric: string = refusal): ConnectVerdict => {
      this.#metrics.connectRefused.inc({ reason: metric });
      this.deps.log.warn({ clientId: r.clientId, deviceId: peer?.deviceId, remote: this.#listener?.remoteOf(c.socket), reason: metric, version: r.version }, 'MQTT connect refused');
      return { ok: false, refusal, message };
    };
    if (!peer) return fail('no_identity', 'no verified device certificate');
    if (r.authenticationMethod !== undefined) return fail('bad_authentication_method', 'the device certificate is the only authentication');
    if (r.clientId !== peer.deviceId) return fail('client_id_mismatch', `client id must be the device id ${peer.deviceId}`);
    if (r.will) {
      const w = r.will;
      const denial = publishDenial(w.topic, peer.deviceId) ?? (w.retain ? 'retain_not_allowed' : undefined) ?? (w.payload.length > this.settings.maxPayloadBytes ? 'payload_too_large' : undefined);
      if (denial) {
        this.#metrics.aclDenied.inc({ kind: 'will', reason: denial });
        return fail('will_refused', `will refused: ${denial}`);
      }
    }
    const ref: { handle?: SessionHandle } = {};
    const admission = await this.#sessions.admit({
      peer,
      address: this.#listener?.remoteOf(c.socket),
      end: () => c.end(ref.handle?.endReason ?? 'kicked'),
      deliver: (topic, payload, qos, options) => Promise.resolve(this.#send(c, topic, payload, qos, options)),
    });
    if (!admission.admitted) return fail(admission.reason === 'unavailable' ? 'admission_failed' : 'not_admitted', admission.message, admission.reason);
    const handle = (ref.handle = admission.session);
    if (c.closed) {
      // The device went away while it was being admitted.
      handle.closed('client_disconnected');
      return { ok: false, refusal: 'admission_failed', message: 'gone' };
    }
    const { session, present } = this.#kept.open(peer.deviceId, c, r.clean);
    const flow = new PublishFlow(c, peer.deviceId, this.#buckets, this.settings.publishBacklogLimit, {
      onHeld: () => this.#metrics.held.inc(),
      onAbuse: (backlog) => {
        this.#metrics.limitHits.inc({ limit: 'publish_backlog' });
        this.deps.log.warn({ deviceId: peer.deviceId, backlog, limit: this.settings.publishBacklogLimit }, 'publish backlog past the hard bound; disconnecting');
        handle.ending('publish_backlog_exceeded');
        c.end('publish_backlog_exceeded');
      },
    });
    this.#live.set(c, { peer, handle, flow, session, expiryS: r.sessionExpiryS ?? this.settings.sessionExpiryMaxSeconds, deferred: 0, allowedTopic: undefined });
    this.#metrics.sessions.set(this.#sessions.localCount);
    this.#metrics.connects.inc({ version: String(r.version) });
    this.deps.log.info({ deviceId: peer.deviceId, remote: this.#listener?.remoteOf(c.socket), version: r.version }, 'MQTT session opened');
    // A session resumed here keeps its subscriptions without a new SUBSCRIBE: what waits goes out after CONNACK.
    if (present && session.filters.size > 0) setImmediate(() => this.deps.inbox?.subscribed(peer.deviceId, [...session.filters.keys()]));
    return { ok: true, sessionPresent: present };
  }

  #publish(c: MqttConnection, p: InboundPublish): PublishOutcome | Promise<PublishOutcome> {
    const live = this.#live.get(c);
    if (!live) return { code: RC.notAuthorized, reason: 'no_identity', fatal: true };
    // A device publishes to a handful of topics: the one that passed last time is not split and matched again.
    const reason = publishRefusal(this.settings, this.#metrics, live.peer.deviceId, p.topic, p.payload.length, p.retain, live.allowedTopic);
    if (!reason) live.allowedTopic = p.topic;
    if (reason) {
      // MQTT 5 QoS 1 gets the refusal in its PUBACK; elsewhere the only answer is a disconnect.
      const fatal = c.version === 4 || p.qos === 0;
      this.deps.log.warn({ deviceId: live.peer.deviceId, topic: p.topic, reason, version: c.version }, fatal ? 'publish refused; disconnecting' : 'publish refused');
      if (fatal) live.handle.ending(reason);
      return { code: pubackCode(reason), reason, fatal };
    }
    // Over its rate, the device waits for its token (flow-control.ts); then the publish waits for
    // room in this turn of the event loop (turn-budget.ts).
    // A connection with publishes waiting for a later turn is not read until they ran: a flood
    // from many devices then parses one read per device and turn at most, not every read there is.
    // (No named closures on this path: the TypeScript loader wraps each in a naming call, every message.)
    return new Promise((resolve) => {
      live.flow.admit(() => {
        const ranNow = this.#budget.run((late) => {
          if (late && --live.deferred === 0) c.hold(false);
          this.#handlePublish(c, live, p, resolve);
        });
        if (ranNow) return;
        this.#metrics.deferred.inc();
        if (live.deferred++ === 0) c.hold(true);
      });
    });
  }

  #handlePublish(c: MqttConnection, live: Live, p: InboundPublish, resolve: (o: PublishOutcome) => void): void {
    this.#metrics.messagesIn.inc();
    this.#handler
      .handle(live.peer, p, (topic, payload, qos) => this.#send(c, topic, payload, qos))
      .then(
        (outcome) => {
          // A device subscribed to its own topics gets its publish back (unless it asked for No Local).
          if (outcome.code === RC.success || outcome.code === RC.payloadFormatInvalid) this.#send(c, p.topic, p.payload, p.qos === 0 ? 0 : 1, undefined, true);
          resolve(outcome);
        },
        (err: Error) => {
          this.deps.log.error({ err, deviceId: live.peer.deviceId, topic: p.topic }, 'device message could not be handled');
          live.handle.ending('ingest_failed');
          resolve({ code: RC.unspecified, reason: 'ingest_failed', fatal: true });
        },
      );
  }

  #subscribe(c: MqttConnection, subs: readonly ISubscription[]): number[] {
    const live = this.#live.get(c);
    const accepted: string[] = [];
    const codes = subs.map((sub) => {
      const denial = !live
        ? 'outside_own_tree'
        : !validFilter(sub.topic)
          ? 'invalid_filter'
          : sub.topic.split('/').length > this.settings.maxTopicLevels
            ? 'too_deep'
            : sub.topic.length > this.settings.maxTopicLength
              ? 'too_long'
              : !live.session.filters.has(sub.topic) && live.session.filters.size >= this.settings.maxSubscriptionsPerSession
                ? 'too_many'
                : subscribeDenial(sub.topic, live.peer.deviceId);
      if (denial) {
        this.#metrics.aclDenied.inc({ kind: 'subscribe', reason: denial });
        this.deps.log.warn({ deviceId: live?.peer.deviceId, filter: sub.topic, reason: denial }, 'subscription refused');
        if (c.version === 4) return 0x80;
        if (denial === 'too_many') return RC.quotaExceeded;
        return denial === 'invalid_filter' || denial === 'too_deep' || denial === 'too_long' ? RC.topicFilterInvalid : RC.notAuthorized;
      }
      const qos = Math.min(sub.qos, 1) as 0 | 1;
      live?.session.filters.set(sub.topic, { qos, noLocal: c.version === 5 && sub.nl === true, levels: sub.topic.split('/') });
      accepted.push(sub.topic);
      return qos;
    });
    // After the SUBACK has been written: what waits for these topics (desired twin, commands, update jobs).
    if (live && accepted.length > 0) queueMicrotask(() => this.deps.inbox?.subscribed(live.peer.deviceId, accepted));
    return codes;
  }

  #closed(c: MqttConnection, reason: string, will: InboundPublish | undefined): void {
    const live = this.#live.get(c);
    if (!live) return;
    live.flow.dispose();
    this.#kept.release(live.peer.deviceId, c, live.expiryS);
    const why = live.handle.closed(reason);
    if (why !== undefined) {
      this.#metrics.sessions.set(this.#sessions.localCount);
      this.#metrics.disconnects.inc({ reason: why });
    }
    // The will of a device that went away without DISCONNECT is its last message; not when the platform shut it out.
    if (will && !KICKS.has(live.handle.endReason ?? '')) {
      void this.#handler.handle(live.peer, will, () => undefined).catch((err: unknown) => this.deps.log.error({ err, deviceId: live.peer.deviceId }, 'could not handle the will message'));
    }
  }
}
