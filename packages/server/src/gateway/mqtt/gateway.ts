import type { AddressInfo } from 'node:net';
import { type TLSSocket, type Server as TlsServer, createServer } from 'node:tls';
import type { Clock, Logger } from '@bulwark/core';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Registry } from 'prom-client';
import type { EventBus } from '../../bus/index.js';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';
import { DeviceTls, tlsRefusalReason } from '../device-tls.js';
import type { IngestResult, IngestService } from '../../ingest/index.js';
import type { DeviceInbox } from '../device-inbox.js';
import type { RegistryService } from '../../registry/index.js';
import { publishDenial, subscribeDenial } from './acl.js';
import { PublishFlow } from './flow-control.js';
import { type MqttMetrics, mqttMetrics } from './metrics.js';
import { peerOf } from './peer.js';
import { handleRotation } from './rotation.js';
import { answerTimeRequest } from './time-sync.js';
import { publishRefusal } from './publish-checks.js';
import { TokenBuckets } from './token-bucket.js';
import { TurnBudget } from './turn-budget.js';
import type { SessionConnection, SessionHandle, SessionTable } from '../sessions.js';
import { LocalSessionTable } from '../sessions-local.js';

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
  readonly #sessions: SessionTable;
  readonly #wills = new WeakMap<Client, { topic: string; retain: boolean; bytes: number } | undefined>();
  readonly #handles = new WeakMap<Client, SessionHandle>();
  readonly #flows = new WeakMap<Client, PublishFlow>();
  readonly #buckets: TokenBuckets;
  readonly #budget: TurnBudget;
  readonly #metrics: MqttMetrics;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #tls: DeviceTls;

  constructor(
    private readonly settings: MqttSettings,
    private readonly deps: {
      identity: IdentityService; registry: RegistryService; bus: EventBus; clock: Clock; log: Logger; metrics: Registry; ingest?: IngestService; inbox?: DeviceInbox;
      /** The live-session table (admission, takeover, kicks, delivery); one of this process by default. */
      sessions?: SessionTable;
      /** Per-device publish budgets, shared with the other device transports; the gateway's own by default. */
      deviceRate?: TokenBuckets;
    },
  ) {
    this.#metrics = mqttMetrics(deps.metrics);
    this.#tls = new DeviceTls(deps.identity, settings.hostnames, deps.clock);
    this.#sessions = deps.sessions ?? new LocalSessionTable({ identity: deps.identity, registry: deps.registry, bus: deps.bus, log: deps.log });
    this.#buckets = deps.deviceRate ?? new TokenBuckets(deps.clock, settings.publishRatePerSecond, settings.publishBurst);
    this.#budget = new TurnBudget(settings.publishesPerTurn);
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
        const session = client && this.#handles.get(client);
        if (!client || !session) return done(client ? new Error('no_identity') : null);
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        const reason = publishRefusal(this.settings, this.#metrics, session.deviceId, packet.topic, payload.length, packet.retain);
        if (reason) {
          if (reason.startsWith('acl_')) this.deps.log.warn({ deviceId: session.deviceId, topic: packet.topic, reason }, 'publish refused; disconnecting');
          session.ending(reason);
          return done(new Error(reason));
        }
        const handle = () => this.#handlePublish(client, session.peer, packet.topic, payload, packet.qos === 0, done);
        // Over its rate, the device waits for its token (flow-control.ts); then the publish waits for
        // room in this turn of the event loop (turn-budget.ts).
        this.#flows.get(client)?.admit(() => {
          if (!this.#budget.run(handle)) this.#metrics.deferred.inc();
        });
      },
      authorizeSubscribe: (client, sub, done) => {
        const peer = this.#handles.get(client)?.peer;
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
    this.#broker.on('clientError', (client, err) => this.#onGone(client, `error: ${err.message}`));
    this.#broker.on('subscribe', (subs, client) => {
      const peer = client && this.#handles.get(client)?.peer;
      if (peer) this.deps.inbox?.subscribed(peer.deviceId, subs.map((x) => x.topic));
    });
    this.#broker.on('clientReady', (client) => {
      // A persistent session resumed here keeps its subscriptions without a new SUBSCRIBE.
      const peer = this.#handles.get(client)?.peer;
      const filters = Object.keys((client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
      if (peer && filters.length > 0) this.deps.inbox?.subscribed(peer.deviceId, filters);
    });
    this.#broker.on('keepaliveTimeout', (client) => this.#handles.get(client)?.ending('keepalive_timeout'));
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
    );
    this.#sessions.start();
    await new Promise<void>((resolve, reject) => {
      tlsServer.once('error', reject);
      tlsServer.listen(this.settings.port, this.settings.host, () => resolve());
    });
    return (tlsServer.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#sessions.stop();
    await new Promise<void>((resolve) => this.#broker.close(() => resolve()));
    if (this.#server) {
      const server = this.#server;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
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
   * resolves false when the device has no session (nothing is queued for it then).
   */
  publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1): Promise<boolean> {
    return this.#sessions.publishToDevice(deviceId, topic, payload, qos);
  }

  async #reloadContext(): Promise<void> {
    if (!this.#server) return;
    await this.#tls.reload(this.#server);
    // Sessions whose issuer is no longer trusted (a manufacturer CA was disabled) end now.
    for (const s of [...this.#sessions.local()]) {
      if (!this.#tls.trustsIssuer(s.peer.issuerFingerprint)) await this.#sessions.kick(s.deviceId, 'issuer_no_longer_trusted', (x) => x === s);
    }
  }

  /** Delivery to one connection of this broker (the session table's way to reach the device). */
  #deliver(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1): Promise<boolean> {
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

  /** A publish that passed the checks and has its token: handled (stored) before its PUBACK. */
  #handlePublish(client: Client, peer: PeerCertificate, topic: string, payload: Buffer, qos0: boolean, done: (err: Error | null) => void): void {
    this.#metrics.messagesIn.inc();
    const suffix = topic.slice(peer.deviceId.length + 9);
    if (topic.endsWith('/certs/rotate')) void handleRotation(this.#broker, this.deps.identity, peer, payload, this.deps.log);
    if (suffix === 'time') answerTimeRequest(this.#broker, this.deps.clock, peer.deviceId, payload, this.deps.clock.now(), this.deps.log);
    if (this.deps.ingest && TELEMETRY.test(suffix)) {
      // Durable before acknowledged: Aedes sends PUBACK only after this callback. A shed QoS 0
      // message is answered on the next turn of the event loop: answered at once, Aedes would
      // parse the client's next chunk in the same turn, and a flood from many clients would keep
      // HTTP (/healthz) and every other socket waiting.
      return void this.#ingest(this.deps.ingest, peer.deviceId, topic, payload, qos0).then((status) => (status === 'shed' ? setImmediate(done, null) : done(null)), (err: Error) => {
        this.#handles.get(client)?.ending('ingest_failed');
        done(err);
      });
    }
    const inboxed = this.deps.inbox?.receive(peer.deviceId, suffix, payload);
    if (inboxed) {
      // Twin reports, command results, health, events and logs: handled (stored) before PUBACK, like telemetry.
      return void inboxed.then((refusal) => {
        if (refusal) this.#notify(peer.deviceId, { reason: refusal.reason, problems: refusal.problems, topic });
        done(null);
      }, (err: Error) => {
        this.deps.log.error({ err, deviceId: peer.deviceId, topic }, 'device message could not be handled');
        this.#handles.get(client)?.ending('handler_failed');
        done(err);
      });
    }
    return done(null);
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
    const connection: SessionConnection = { peer, end: () => client.close(), deliver: (topic, payload, qos) => this.#deliver(peer.deviceId, topic, payload, qos) };
    const admission = await this.#sessions.admit(connection);
    if (!admission.admitted) throw fail(admission.reason, 5, admission.message);
    const session = admission.session;
    if ((client as Client & { closed?: boolean }).closed) {
      // The device went away while it was being admitted: Aedes reports nothing more for it.
      session.closed('client_disconnected');
      return;
    }
    this.#handles.set(client, session);
    this.#flows.set(client, new PublishFlow(client, peer.deviceId, this.#buckets, this.settings.publishBacklogLimit, {
      onHeld: () => this.#metrics.held.inc(),
      onAbuse: (backlog) => {
        this.#metrics.limitHits.inc({ limit: 'publish_backlog' });
        this.deps.log.warn({ deviceId: peer.deviceId, backlog, limit: this.settings.publishBacklogLimit }, 'publish backlog past the hard bound; disconnecting');
        session.ending('publish_backlog_exceeded');
        client.close();
      },
    }));
    this.#metrics.sessions.set(this.#sessions.localCount);
  }

  #onGone(client: Client, reason: string): void {
    this.#flows.get(client)?.dispose();
    const why = this.#handles.get(client)?.closed(reason);
    if (why === undefined) return;
    this.#metrics.sessions.set(this.#sessions.localCount);
    this.#metrics.disconnects.inc({ reason: why.startsWith('error:') ? 'error' : why });
  }
}

/** `telemetry` or `telemetry/{stream}` after `devices/{id}/`. */
const TELEMETRY = /^telemetry(\/[^/]+)?$/;
