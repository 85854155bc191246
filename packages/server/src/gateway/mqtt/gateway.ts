import type { AddressInfo } from 'node:net';
import { type TLSSocket, type Server as TlsServer, createServer } from 'node:tls';
import { type Clock, type Logger, PlatformError } from '@bulwark/core';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Registry } from 'prom-client';
import type { EventBus } from '../../bus/index.js';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';
import { DeviceTls, tlsRefusalReason } from '../device-tls.js';
import type { IngestResult, IngestService } from '../../ingest/index.js';
import type { DeviceInbox } from '../device-inbox.js';
import type { RegistryService } from '../../registry/index.js';
import { publishDenial, subscribeDenial } from './acl.js';
import { type MqttMetrics, mqttMetrics } from './metrics.js';
import { peerOf } from './peer.js';
import { handleRotation } from './rotation.js';
import { answerTimeRequest } from './time-sync.js';
import { TokenBuckets } from './token-bucket.js';

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
}

interface Session {
  readonly client: Client;
  readonly peer: PeerCertificate;
  /** Why the platform ended the session, when it did. */
  closeReason?: string;
}

const refuse = (returnCode: 2 | 4 | 5, message: string): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

/**
 * The MQTT device gateway: Aedes behind a TLS server that demands a client certificate
 * from the platform's CA (checked against its CRL), with identity taken from that
 * certificate, a per-device topic ACL, size and rate limits, and immediate disconnection
 * of revoked, suspended and decommissioned devices.
 */
export class MqttGateway {
  readonly #broker: Aedes;
  #server: TlsServer | undefined;
  readonly #sessions = new Map<string, Session>();
  readonly #wills = new WeakMap<Client, { topic: string; retain: boolean; bytes: number } | undefined>();
  readonly #peers = new WeakMap<Client, PeerCertificate>();
  readonly #buckets: TokenBuckets;
  readonly #metrics: MqttMetrics;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #tls: DeviceTls;

  constructor(
    private readonly settings: MqttSettings,
    private readonly deps: { identity: IdentityService; registry: RegistryService; bus: EventBus; clock: Clock; log: Logger; metrics: Registry; ingest?: IngestService; inbox?: DeviceInbox },
  ) {
    this.#metrics = mqttMetrics(deps.metrics);
    this.#tls = new DeviceTls(deps.identity, settings.hostnames, deps.clock);
    this.#buckets = new TokenBuckets(deps.clock, settings.publishRatePerSecond, settings.publishBurst);
    this.#broker = new Aedes({
      // Depth is enforced below, so that a too-deep SUBSCRIBE gets SUBACK 0x80 rather than a dropped connection.
      maxTopicLevels: 100,
      preConnect: (client, packet, done) => {
        const w = packet.will;
        this.#wills.set(client, w ? { topic: w.topic, retain: w.retain === true, bytes: w.payload?.length ?? 0 } : undefined);
        done(null, true);
      },
      authenticate: (client, _username, _password, done) => {
        this.#authenticate(client).then(() => done(null, true), (err: AuthenticateError) => done(err, false));
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null);
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        const reason = this.#publishRefusal(client, packet.topic, payload.length, packet.retain);
        if (reason) {
          this.#closeReason(client, reason);
          return done(new Error(reason));
        }
        const peer = this.#peers.get(client);
        this.#metrics.messagesIn.inc();
        if (peer && packet.topic.endsWith('/certs/rotate')) void handleRotation(this.#broker, this.deps.identity, peer, payload, this.deps.log);
        if (peer && packet.topic === `devices/${peer.deviceId}/time`) answerTimeRequest(this.#broker, this.deps.clock, peer.deviceId, payload, this.deps.clock.now(), this.deps.log);
        if (peer && this.deps.ingest && TELEMETRY.test(packet.topic.slice(peer.deviceId.length + 9))) {
          // Durable before acknowledged: Aedes sends PUBACK only after this callback. A shed QoS 0
          // message is answered on the next turn of the event loop: answered at once, Aedes would
          // parse the client's next chunk in the same turn, and a flood from many clients would keep
          // HTTP (/healthz) and every other socket waiting.
          return void this.#ingest(this.deps.ingest, peer.deviceId, packet.topic, payload, packet.qos === 0).then((status) => (status === 'shed' ? setImmediate(done, null) : done(null)), (err: Error) => {
            this.#closeReason(client, 'ingest_failed');
            done(err);
          });
        }
        const inboxed = peer && this.deps.inbox?.receive(peer.deviceId, packet.topic.slice(peer.deviceId.length + 9), payload);
        if (peer && inboxed) {
          // Twin reports, command results, health, events and logs: handled (stored) before PUBACK, like telemetry.
          return void inboxed.then((refusal) => {
            if (refusal) this.#notify(peer.deviceId, { reason: refusal.reason, problems: refusal.problems, topic: packet.topic });
            done(null);
          }, (err: Error) => {
            this.deps.log.error({ err, deviceId: peer.deviceId, topic: packet.topic }, 'device message could not be handled');
            this.#closeReason(client, 'handler_failed');
            done(err);
          });
        }
        return done(null);
      },
      authorizeSubscribe: (client, sub, done) => {
        const peer = this.#peers.get(client);
        const tooDeep = sub.topic.split('/').length > this.settings.maxTopicLevels;
        const denial = !peer ? 'outside_own_tree' : tooDeep ? 'too_deep' : subscribeDenial(sub.topic, peer.deviceId);
        if (denial) {
          this.#metrics.aclDenied.inc({ kind: 'subscribe', reason: denial });
          this.deps.log.warn({ deviceId: peer?.deviceId, filter: sub.topic, reason: denial }, 'subscription refused');
          return done(null, null);
        }
        return done(null, sub);
      },
    });
    this.#broker.on('connectionError', (client) => this.#onGone(client, 'connection_error'));
    this.#broker.on('clientDisconnect', (client) => this.#onGone(client, 'client_disconnected'));
    this.#broker.on('clientError', (client, err) => this.#onGone(client, this.#sessionOf(client)?.closeReason ?? `error: ${err.message}`));
    this.#broker.on('subscribe', (subs, client) => {
      const peer = client && this.#peers.get(client);
      if (peer) this.deps.inbox?.subscribed(peer.deviceId, subs.map((x) => x.topic));
    });
    this.#broker.on('clientReady', (client) => {
      // A persistent session resumed here keeps its subscriptions without a new SUBSCRIBE.
      const peer = this.#peers.get(client);
      const filters = Object.keys((client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
      if (peer && filters.length > 0) this.deps.inbox?.subscribed(peer.deviceId, filters);
    });
    this.#broker.on('keepaliveTimeout', (client) => this.#closeReason(client, 'keepalive_timeout'));
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    await this.#broker.listen();
    const tlsServer = createServer(await this.#tls.serverOptions());
    this.#server = tlsServer;
    tlsServer.on('secureConnection', (socket) => this.#broker.handle(socket));
    tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket) => {
      const reason = tlsRefusalReason(socket, err);
      this.#metrics.tlsRefused.inc({ reason });
      this.deps.log.info({ remote: socket.remoteAddress, reason, err: err.message }, 'TLS handshake refused');
    });
    this.#unsubscribe.push(
      this.deps.bus.subscribe('crl.updated', () => this.#reloadContext()),
      this.deps.bus.subscribe('trust.changed', () => this.#reloadContext()),
      this.deps.bus.subscribe('certificate.revoked', (e) => this.#kick(e.deviceId, 'certificate_revoked', (s) => sameSerial(s.peer.serial, e.serial))),
      this.deps.bus.subscribe('device.suspended', (e) => this.#kick(e.deviceId, 'device_suspended')),
      this.deps.bus.subscribe('device.decommissioned', (e) => this.#kick(e.deviceId, 'device_decommissioned')),
    );
    await new Promise<void>((resolve, reject) => {
      tlsServer.once('error', reject);
      tlsServer.listen(this.settings.port, this.settings.host, () => resolve());
    });
    return (tlsServer.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    for (const s of this.#sessions.values()) s.closeReason = 'server_stopping';
    await new Promise<void>((resolve) => this.#broker.close(() => resolve()));
    if (this.#server) {
      const server = this.#server;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  isConnected(deviceId: string): boolean {
    return this.#sessions.has(deviceId);
  }

  async #reloadContext(): Promise<void> {
    if (!this.#server) return;
    await this.#tls.reload(this.#server);
    // Sessions whose issuer is no longer trusted (a manufacturer CA was disabled) end now.
    for (const [deviceId, s] of this.#sessions) {
      if (!this.#tls.trustsIssuer(s.peer.issuerFingerprint)) this.#kick(deviceId, 'issuer_no_longer_trusted');
    }
  }

  /**
   * Publishes from the platform to a connected device's own topic; resolves false when the
   * device has no session here (nothing is queued for it then).
   */
  publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1): Promise<boolean> {
    if (!this.#sessions.has(deviceId)) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#broker.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => {
        if (err) this.deps.log.error({ err, deviceId, topic }, 'could not publish to the device');
        resolve(!err);
      });
    });
  }

  #notify(deviceId: string, notice: object): void {
    this.#broker.publish({ cmd: 'publish', topic: `devices/${deviceId}/errors`, payload: Buffer.from(JSON.stringify(notice)), qos: 1, retain: false, dup: false }, (err) => {
      if (err) this.deps.log.error({ err, deviceId }, 'could not send the error notice');
    });
  }

  /** Hands a telemetry publish to the pipeline; a refused message's reason goes back on the device's errors topic. */
  async #ingest(ingest: IngestService, deviceId: string, topic: string, payload: Buffer, sheddable: boolean): Promise<IngestResult['status']> {
    const result = await ingest.accept({ deviceId, transport: 'mqtt', topic, payload, receivedAt: this.deps.clock.now(), sheddable });
    if (result.status !== 'dead_lettered') return result.status;
    const notice = { deadLetterId: result.id, reason: result.reason, problems: result.problems, topic };
    this.#broker.publish({ cmd: 'publish', topic: `devices/${deviceId}/errors`, payload: Buffer.from(JSON.stringify(notice)), qos: 1, retain: false, dup: false }, (err) => {
      if (err) this.deps.log.error({ err, deviceId }, 'could not send the dead-letter notice');
    });
    return result.status;
  }

  async #authenticate(client: Client): Promise<void> {
    const peer = peerOf(client.conn as TLSSocket);
    const fail = (reason: string, code: 2 | 4 | 5, message: string) => {
      this.#metrics.connectRefused.inc({ reason });
      this.deps.log.warn({ clientId: client.id, deviceId: peer?.deviceId, reason }, 'MQTT connect refused');
      return refuse(code, message);
    };
    if (!peer) throw fail('no_identity', 5, 'no verified device certificate');
    if (client.id !== peer.deviceId) throw fail('client_id_mismatch', 2, `client id must be the device id ${peer.deviceId}`);
    const will = this.#wills.get(client);
    if (will !== undefined) {
      const denial = publishDenial(will.topic, peer.deviceId) ?? (will.retain ? 'retain_not_allowed' : undefined) ?? (will.bytes > this.settings.maxPayloadBytes ? 'payload_too_large' : undefined);
      if (denial) {
        this.#metrics.aclDenied.inc({ kind: 'will', reason: denial });
        throw fail('will_refused', 5, `will refused: ${denial}`);
      }
    }
    try {
      await this.deps.identity.admitSession(peer);
    } catch (err) {
      const reason = err instanceof PlatformError ? err.message : 'internal error';
      throw fail('not_admitted', 5, reason);
    }
    // The session is known from here on, so a revocation or suspension arriving now finds it;
    // one that landed while admitSession was reading is caught by the re-check.
    this.#peers.set(client, peer);
    this.#sessions.set(peer.deviceId, { client, peer });
    this.#metrics.sessions.set(this.#sessions.size);
    void this.deps.registry.recordConnect(peer.deviceId).catch((err: unknown) => this.deps.log.error({ err }, 'could not record a connect'));
    void this.deps.identity.checkSession(peer).catch(() => this.#kick(peer.deviceId, 'admission_revoked', (s) => s.client === client));
  }

  #onGone(client: Client, reason: string): void {
    const peer = this.#peers.get(client);
    if (!peer) return;
    const session = this.#sessions.get(peer.deviceId);
    if (session?.client !== client) return; // a newer session of the same device took over
    this.#sessions.delete(peer.deviceId);
    this.#metrics.sessions.set(this.#sessions.size);
    const why = session.closeReason ?? reason;
    this.#metrics.disconnects.inc({ reason: why.startsWith('error:') ? 'error' : why });
    void this.deps.registry.recordDisconnect(peer.deviceId, why).catch((err: unknown) => this.deps.log.error({ err }, 'could not record a disconnect'));
  }

  #sessionOf(client: Client): Session | undefined {
    const peer = this.#peers.get(client);
    const s = peer && this.#sessions.get(peer.deviceId);
    return s?.client === client ? s : undefined;
  }

  #closeReason(client: Client, reason: string): void {
    const s = this.#sessionOf(client);
    if (s) s.closeReason = reason;
  }

  #publishRefusal(client: Client, topic: string, payloadBytes: number, retain: boolean): string | undefined {
    const peer = this.#peers.get(client);
    if (!peer) return 'no_identity';
    if (retain) {
      // Retained messages would live in broker memory for ever; devices have no use for them.
      this.#metrics.aclDenied.inc({ kind: 'publish', reason: 'retain_not_allowed' });
      return 'acl_retain_not_allowed';
    }
    if (topic.length > this.settings.maxTopicLength) {
      this.#metrics.limitHits.inc({ limit: 'topic_length' });
      return 'topic_too_long';
    }
    if (topic.split('/').length > this.settings.maxTopicLevels) {
      this.#metrics.limitHits.inc({ limit: 'topic_depth' });
      return 'topic_too_deep';
    }
    if (payloadBytes > this.settings.maxPayloadBytes) {
      this.#metrics.limitHits.inc({ limit: 'payload_size' });
      return 'payload_too_large';
    }
    const denial = publishDenial(topic, peer.deviceId);
    if (denial) {
      this.#metrics.aclDenied.inc({ kind: 'publish', reason: denial });
      this.deps.log.warn({ deviceId: peer.deviceId, topic, reason: denial }, 'publish refused; disconnecting');
      return `acl_${denial}`;
    }
    if (!this.#buckets.take(peer.deviceId)) {
      this.#metrics.limitHits.inc({ limit: 'publish_rate' });
      return 'publish_rate_exceeded';
    }
    return undefined;
  }

  /** Ends the device's live session now, if it has one here (and it matches). */
  #kick(deviceId: string, reason: string, match: (s: Session) => boolean = () => true): void {
    const session = this.#sessions.get(deviceId);
    if (!session || !match(session)) return;
    session.closeReason = reason;
    this.deps.log.info({ deviceId, reason }, 'disconnecting device');
    session.client.close();
  }
}

/** `telemetry` or `telemetry/{stream}` after `devices/{id}/`. */
const TELEMETRY = /^telemetry(\/[^/]+)?$/;

const sameSerial = (a: string, b: string) => a.toLowerCase().replace(/^0+/, '') === b.toLowerCase().replace(/^0+/, '');

