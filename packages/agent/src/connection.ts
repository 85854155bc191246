import { EventEmitter } from 'node:events';
import { type SecureContext, createSecureContext } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Backoff, Rng } from './backoff.js';

export interface TlsMaterial {
  readonly key: string | Buffer;
  readonly cert: string;
  readonly ca: string;
}

export interface ConnectionOptions {
  readonly url: string;
  readonly clientId: string;
  readonly keepaliveS: number;
  readonly connectTimeoutMs: number;
  readonly servername?: string;
  /** Read at every attempt, so a renewed certificate is used on the next connection. */
  readonly tls: () => TlsMaterial;
  readonly subscriptions: readonly string[];
  readonly backoff: Backoff;
  readonly rng: Rng;
  readonly stableAfterMs: number;
  readonly refusedDelayMs: number;
  readonly mono: () => number;
}

/**
 * mqtt.js makes a `debug` logger for every client unless it is given one (about 2 KB each: a
 * host running thousands of devices pays it thousands of times). The agent gives it one
 * shared no-op: what the connection does, the agent logs itself (`connection state`,
 * refusals, reconnects), so mqtt.js's own `DEBUG=mqttjs*` trace is off for agents.
 */
const MQTT_LOG = (): void => undefined;

const sameKey = (a: string | Buffer, b: string | Buffer): boolean => (typeof a === 'string' || typeof b === 'string' ? a === b : a.equals(b));

/** Closes before CONNACK, after a good handshake, that count as a refusal. */
const CLOSED_BEFORE_CONNACK_LIMIT = 3;

/** Why the server refused us: these are not network trouble, and retrying soon would only hammer it. */
export function refusalOf(err: Error & { code?: unknown }): string | undefined {
  const code = err.code;
  if (code === 2) return 'identifier_rejected';
  if (code === 4) return 'bad_credentials';
  if (code === 5) return 'not_authorized';
  if (typeof code === 'string' && /^ERR_SSL_.*ALERT/.test(code)) return `tls_alert:${code.replace(/^ERR_SSL_(SSLV3_|TLSV1[0-9]?_)?ALERT_/, '').toLowerCase()}`;
  if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return `server_certificate:${code.toLowerCase()}`;
  return undefined;
}

export interface ConnectionEvents {
  attempt: [{ attempt: number; delayMs: number }];
  connected: [MqttClient];
  disconnected: [{ reason: string; upMs: number }];
  refused: [{ reason: string; detail: string; retryInMs: number }];
  message: [string, Buffer];
}

/**
 * One MQTT 3.1.1 session over mutual TLS with our own reconnect loop (mqtt.js' own is off,
 * reconnectPeriod 0): a fresh client per attempt, delays from the injected backoff (full
 * jitter), and a long jittered wait after a refusal. `connected` fires after the SUBACK of
 * the device's subscriptions. clean: false keeps the broker-side session (subscriptions
 * and QoS 1 messages sent while the device was away).
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly #o: ConnectionOptions;
  #client: MqttClient | undefined;
  #connectedClient: MqttClient | undefined;
  /**
   * The TLS context of the last material: parsing the key, certificate and CA costs about
   * 3 ms of CPU, which every reconnect of every device would pay again (10,000 devices
   * reconnecting after an outage: half a minute of one core). Made again when the material
   * changes (a renewed certificate).
   */
  #context: { readonly material: TlsMaterial; readonly context: SecureContext } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Attempts in a row where the TLS handshake succeeded and the server closed before CONNACK. */
  #closedBeforeConnack = 0;
  reconnects = 0;
  attempts = 0;

  constructor(options: ConnectionOptions) {
    super();
    this.#o = options;
  }

  get client(): MqttClient | undefined {
    return this.#connectedClient;
  }

  start(): void {
    this.#schedule(0);
  }

  /** QoS 1; true once the platform acknowledged it (false when offline, or after `timeoutMs`). */
  publishAcked(topic: string, body: unknown, timeoutMs = 10_000): Promise<boolean> {
    const client = this.client;
    if (!client) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      client.publish(topic, JSON.stringify(body), { qos: 1 }, (err) => {
        clearTimeout(t);
        resolve(!err);
      });
    });
  }

  /** Ends the current session (a stalled one, or to pick up a new certificate) and reconnects after `delayMs`. */
  drop(delayMs?: number): void {
    const c = this.#client;
    if (!c) return;
    this.#nextDelay = delayMs;
    c.end(true);
  }

  #nextDelay: number | undefined;

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const c = this.#client;
    this.#client = undefined;
    this.#connectedClient = undefined;
    if (!c) return;
    // A graceful DISCONNECT keeps the broker session; if it does not finish within a second, cut the socket.
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.end(true);
        c.stream?.destroy();
        resolve();
      }, 1000);
      c.end(false, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
    c.stream?.destroy();
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.emit('attempt', { attempt: this.#o.backoff.attempt, delayMs });
    this.#timer = setTimeout(() => this.#attempt(), delayMs);
  }

  #secureContext(m: TlsMaterial): SecureContext {
    const cached = this.#context;
    if (cached && cached.material.cert === m.cert && cached.material.ca === m.ca && sameKey(cached.material.key, m.key)) return cached.context;
    const context = createSecureContext({ key: m.key, cert: m.cert, ca: m.ca });
    this.#context = { material: m, context };
    return context;
  }

  #attempt(): void {
    if (this.#stopped) return;
    this.attempts += 1;
    const u = new URL(this.#o.url);
    let context: SecureContext;
    try {
      context = this.#secureContext(this.#o.tls());
    } catch (err) {
      this.#refused('identity_unreadable', (err as Error).message);
      return;
    }
    // mqtt.js hands its options to tls.connect, secureContext included (its types do not list it).
    const options: IClientOptions & { secureContext: SecureContext } = {
      protocol: 'mqtts',
      host: u.hostname,
      port: Number(u.port),
      protocolVersion: 4,
      clean: false,
      clientId: this.#o.clientId,
      keepalive: this.#o.keepaliveS,
      connectTimeout: this.#o.connectTimeoutMs,
      reconnectPeriod: 0,
      rejectUnauthorized: true,
      secureContext: context,
      ...(this.#o.servername ? { servername: this.#o.servername } : {}),
      log: MQTT_LOG,
    };
    const client = mqtt.connect(options);
    this.#client = client;
    let lastError: (Error & { code?: unknown }) | undefined;
    let upAt: number | undefined;
    let secured = false;
    client.stream?.once('secureConnect', () => {
      secured = true;
    });
    client.on('error', (err) => {
      lastError = err;
      if (upAt === undefined) client.end(true);
    });
    client.on('message', (topic, payload) => this.emit('message', topic, payload));
    client.once('connect', () => {
      upAt = this.#o.mono();
      this.#closedBeforeConnack = 0;
      client.subscribe(this.#o.subscriptions.map(String), { qos: 1 }, (err) => {
        if (err || this.#client !== client) {
          client.end(true);
          return;
        }
        this.#connectedClient = client;
        this.emit('connected', client);
      });
    });
    client.once('close', () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      const wasUp = this.#connectedClient === client;
      this.#connectedClient = undefined;
      client.removeAllListeners('message');
      client.end(true);
      if (this.#stopped) return;
      const refusal = lastError && upAt === undefined ? refusalOf(lastError) : undefined;
      if (refusal) return this.#refused(refusal, lastError?.message ?? '');
      // A server that refuses a certificate after the handshake (Node's TLS servers do, with no
      // alert: a revoked certificate looks like this) closes before CONNACK. Once is network
      // trouble; three times in a row is a refusal, and gets the long wait.
      if (secured && upAt === undefined && this.#nextDelay === undefined) this.#closedBeforeConnack += 1;
      if (this.#closedBeforeConnack >= CLOSED_BEFORE_CONNACK_LIMIT) {
        this.#closedBeforeConnack = 0;
        return this.#refused('closed_before_connack', `the server closed the connection after the TLS handshake and before CONNACK ${CLOSED_BEFORE_CONNACK_LIMIT} times in a row (a revoked certificate, or a device the platform will not admit)`);
      }
      const upMs = upAt === undefined ? 0 : this.#o.mono() - upAt;
      if (upMs >= this.#o.stableAfterMs) this.#o.backoff.reset();
      if (wasUp) {
        this.reconnects += 1;
        this.emit('disconnected', { reason: lastError?.message ?? 'closed', upMs });
      }
      const forced = this.#nextDelay;
      this.#nextDelay = undefined;
      this.#schedule(forced ?? this.#o.backoff.next());
    });
  }

  #refused(reason: string, detail: string): void {
    // Never hammer a server that said no: at least half the refusal delay, jittered.
    const retryInMs = Math.round(this.#o.refusedDelayMs * (0.5 + 0.5 * this.#o.rng()));
    this.#o.backoff.atLeast(this.#o.refusedDelayMs);
    this.emit('refused', { reason, detail, retryInMs });
    this.#schedule(retryInMs);
  }
}
