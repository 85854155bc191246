import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { type Clock, type ErrorCode, type Logger, PlatformError, isPlatformError } from '@bulwark/core';
import type { RotationIssued } from '@bulwark/protocol';
import { Counter, type Registry } from 'prom-client';
import { HTTP_STATUS } from '../../http/index.js';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';
import type { IngestService } from '../../ingest/index.js';
import { type Tracer, preciseNow } from '../../tracing/index.js';
import type { AddressRange } from '../../config/index.js';
import { DeviceListener } from '../device-listener.js';
import { DeviceTls, tlsRefusalReason } from '../device-tls.js';
import { peerOf } from '../mqtt/peer.js';
import { csrOf } from '../mqtt/rotation.js';
import type { TokenBuckets } from '../mqtt/token-bucket.js';
import { FIRMWARE_PATH, type FirmwareSource, firmwareMetrics, serveFirmware } from './firmware-download.js';

export interface DeviceHttpsSettings {
  readonly host: string;
  readonly port: number;
  readonly hostnames: readonly string[];
  readonly maxBodyBytes: number;
  /** TCP load balancers whose connections start with a PROXY protocol v2 header (none: off). */
  readonly proxyProtocolFrom?: readonly AddressRange[];
}

/** A route's answer: status, body, and what to do once it is sent (end a message's trace). */
type Handler = (peer: PeerCertificate, req: IncomingMessage, body: Buffer, url: URL, arrived: number) => Promise<[number, unknown, (() => void)?] | [number, unknown, (() => void) | undefined]>;

/**
 * Device ingest over HTTPS with mutual TLS, for devices that cannot keep an MQTT session:
 * the same identity rules (the certificate names the device), the same pipeline, and an
 * answer only after the reading is durable, and the device's message rate (shared with MQTT
 * and CoAP; firmware downloads excepted) bounded with 429 + Retry-After. Routes: POST /v1/telemetry, GET /v1/time,
 * POST /v1/certs/rotate, and GET /v1/firmware/{artifactId} (Range; only with a live update job).
 */
export class DeviceHttpsGateway {
  #server: Server | undefined;
  #listener: DeviceListener | undefined;
  readonly #tls: DeviceTls;
  readonly #admitted = new WeakMap<TLSSocket, Promise<void>>();
  readonly #requests: Counter<'route' | 'status'>;
  readonly #tlsRefused: Counter<'reason'>;
  readonly #rateLimited: Counter;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #firmwareMetrics: ReturnType<typeof firmwareMetrics>;

  constructor(
    private readonly settings: DeviceHttpsSettings,
    private readonly deps: {
      identity: IdentityService;
      ingest: IngestService;
      clock: Clock;
      log: Logger;
      metrics: Registry;
      firmware?: FirmwareSource;
      /** Per-device message budgets shared with MQTT and CoAP; none: no bound. */
      deviceRate?: TokenBuckets;
      /** Traces the sampled telemetry messages (a `traceparent` request header is honoured); none: no tracing. */
      tracer?: Tracer;
    },
  ) {
    this.#tls = new DeviceTls(deps.identity, settings.hostnames, deps.clock);
    this.#requests = new Counter({ name: 'bulwark_device_https_requests_total', help: 'Device HTTPS requests by route and status', labelNames: ['route', 'status'] as const, registers: [deps.metrics] });
    this.#firmwareMetrics = firmwareMetrics(deps.metrics);
    this.#rateLimited = new Counter({ name: 'bulwark_device_https_rate_limited_total', help: 'Device HTTPS requests answered 429 because the device was over its message rate (mqtt.publishRatePerSecond)', registers: [deps.metrics] });
    this.#tlsRefused = new Counter({ name: 'bulwark_device_https_tls_refused_total', help: 'Device HTTPS handshakes refused, by reason', labelNames: ['reason'] as const, registers: [deps.metrics] });
  }

  async start(): Promise<number> {
    const server = createServer({ ...(await this.#tls.serverOptions()), requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => void this.#serve(req, res));
    this.#server = server;
    const listener = new DeviceListener(server, { name: 'https', proxyProtocolFrom: this.settings.proxyProtocolFrom ?? [], log: this.deps.log, metrics: this.deps.metrics });
    this.#listener = listener;
    server.on('tlsClientError', (err: Error & { code?: string }, socket) => {
      const reason = tlsRefusalReason(socket, err);
      this.#tlsRefused.inc({ reason });
      this.deps.log.info({ remote: listener.remoteOf(socket), reason, err: err.message }, 'device HTTPS handshake refused');
    });
    const reload = () => this.#tls.reload(server).catch((err: unknown) => this.deps.log.error({ err }, 'could not reload the device HTTPS trust store'));
    this.#unsubscribe.push(this.#tls.onTrustChanged(reload));
    return listener.listen(this.settings.port, this.settings.host);
  }

  async stop(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), this.#listener?.close()]);
  }

  readonly #routes: Readonly<Record<string, Handler>> = {
    'POST /v1/telemetry': async (peer, req, body, _url, arrived) => {
      if (!/^application\/(json|cbor)\b/i.test(req.headers['content-type'] ?? '')) throw new PlatformError('BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the envelope as application/json or application/cbor');
      const header = req.headers.traceparent;
      const trace = this.deps.tracer?.begin(peer.deviceId, arrived, typeof header === 'string' ? header : undefined);
      const result = await this.deps.ingest.accept({ deviceId: peer.deviceId, transport: 'http', topic: null, payload: body, receivedAt: this.deps.clock.now(), trace });
      const sent =
        trace &&
        (() => {
          trace.hop('gateway.ack');
          trace.end({ 'bulwark.outcome': result.status });
        });
      if (result.status === 'dead_lettered') return [422, { status: result.status, deadLetterId: result.id, reason: result.reason, problems: result.problems }, sent];
      return [200, { status: result.status }, sent];
    },
    'GET /v1/time': async (_peer, _req, _body, url) => {
      const t1 = this.deps.clock.now();
      const t0 = Number(url.searchParams.get('t0'));
      return [200, { t0: Number.isFinite(t0) && url.searchParams.has('t0') ? t0 : null, t1, t2: this.deps.clock.now() }];
    },
    'POST /v1/certs/rotate': async (peer, _req, body) => {
      const issued = await this.deps.identity.rotate(peer, csrOf(body));
      return [201, { serial: issued.serial, certificate: issued.certificatePem, caChain: issued.caChainPem, notAfter: issued.notAfter } satisfies RotationIssued];
    },
  };

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = preciseNow();
    const url = new URL(req.url ?? '/', 'https://device');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    const handler = this.#routes[route];
    let status = 500;
    try {
      const peer = peerOf(req.socket as TLSSocket);
      if (!peer) throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'no verified device certificate');
      await this.#admit(req.socket as TLSSocket, peer);
      const fw = FIRMWARE_PATH.exec(url.pathname);
      if (fw?.[1] && (req.method === 'GET' || req.method === 'HEAD')) {
        status = await this.#firmware(peer, req, res, fw[1]);
        return;
      }
      if (!handler) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no route ${route}`);
      // The device's budget is the one its MQTT session spends: over it, 429 at once (the
      // connection is not held); Retry-After says when the next token is there.
      const waitMs = this.deps.deviceRate?.tryTake(peer.deviceId) ?? 0;
      if (waitMs > 0) {
        status = 429;
        this.#rateLimited.inc();
        req.resume();
        send(res, 429, { error: { code: 'BULWARK_ERR_RATE_LIMITED', message: `over this device's message rate; retry in ${waitMs} ms` } }, { 'retry-after': String(Math.ceil(waitMs / 1000)) });
        return;
      }
      const body = await readBody(req, this.settings.maxBodyBytes);
      const [code, payload, sent] = await handler(peer, req, body, url, arrived);
      status = code;
      send(res, code, payload);
      sent?.();
    } catch (err) {
      const e = isPlatformError(err) ? err : new PlatformError('BULWARK_ERR_INTERNAL', 'internal error', { cause: err });
      if (e.category === 'internal' || e.category === 'unavailable') this.deps.log.error({ err }, 'device HTTPS request failed');
      status = HTTP_STATUS[e.category];
      send(res, status, { error: { code: e.code satisfies ErrorCode, message: e.message } });
    } finally {
      this.#requests.inc({ route: handler ? route : FIRMWARE_PATH.test(url.pathname) ? 'GET /v1/firmware' : 'unmatched', status: String(status) });
    }
  }

  async #firmware(peer: PeerCertificate, req: IncomingMessage, res: ServerResponse, artifactId: string): Promise<number> {
    const file = await this.deps.firmware?.download(peer.deviceId, artifactId);
    if (!file) {
      this.#firmwareMetrics.requests.inc({ result: 'refused' });
      throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no firmware ${artifactId} for this device (it has no update job for it)`);
    }
    return serveFirmware(req, res, file, this.#firmwareMetrics);
  }

  /** The first request on a connection admits the device like an MQTT CONNECT; later ones re-check it. */
  async #admit(socket: TLSSocket, peer: PeerCertificate): Promise<void> {
    const first = this.#admitted.get(socket);
    if (!first) {
      const admission = this.deps.identity.admitSession(peer);
      this.#admitted.set(
        socket,
        admission.catch(() => undefined),
      );
      await admission.catch((err: unknown) => {
        throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', isPlatformError(err) ? err.message : 'not admitted');
      });
      this.deps.log.info({ deviceId: peer.deviceId, remote: this.#listener?.remoteOf(socket) }, 'device HTTPS connection opened');
      return;
    }
    await first;
    await this.deps.identity.checkSession(peer).catch((err: unknown) => {
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', isPlatformError(err) ? err.message : 'not admitted');
    });
  }
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(new PlatformError('BULWARK_ERR_PAYLOAD_TOO_LARGE', `the body is larger than ${limit} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new PlatformError('BULWARK_ERR_PAYLOAD_TOO_LARGE', `the body is larger than ${limit} bytes`));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
