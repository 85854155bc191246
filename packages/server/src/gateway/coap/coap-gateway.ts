import { X509Certificate, verify } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type Clock, type Logger, PlatformError, isPlatformError } from '@bulwark/core';
import { deviceIdProblem } from '@bulwark/protocol';
import { type IncomingMessage, type OutgoingMessage, type Server, createServer } from 'coap';
import { Counter, type Registry } from 'prom-client';
import type { IdentityService } from '../../identity/index.js';
import type { IngestService } from '../../ingest/index.js';
import { type MessageTrace, type Tracer, preciseNow } from '../../tracing/index.js';
import type { TokenBuckets } from '../mqtt/token-bucket.js';

export interface CoapSettings {
  readonly host: string;
  readonly port: number;
}

/**
 * CoAP ingest over plain UDP: there is no DTLS for Node's CoAP stack, so the transport gives
 * no identity and no confidentiality. Each request instead carries an ECDSA signature made
 * with the device's own certificate key over the exact payload bytes:
 *   POST coap://host/t?d=<device id>&s=<base64url DER signature>   payload: the envelope
 * The signature is checked against the device's live certificates (not revoked, in their
 * validity); the envelope id makes a replay a duplicate. Readings are authentic, but
 * readable on the wire: CoAP is off by default and binds loopback unless the operator says
 * the network is trusted. A device over its message rate (one budget with MQTT and device
 * HTTPS) gets 4.29 Too Many Requests (RFC 8516) with Max-Age in seconds.
 */
export class CoapGateway {
  #server: Server | undefined;
  readonly #requests: Counter<'code'>;
  readonly #rateLimited: Counter;

  constructor(
    private readonly settings: CoapSettings,
    private readonly deps: {
      identity: IdentityService;
      ingest: IngestService;
      clock: Clock;
      log: Logger;
      metrics: Registry;
      /** Per-device message budgets shared with MQTT and device HTTPS; none: no bound. */
      deviceRate?: TokenBuckets;
      /** Traces the sampled telemetry messages (CoAP carries no trace context: one is made here); none: no tracing. */
      tracer?: Tracer;
    },
  ) {
    this.#requests = new Counter({ name: 'bulwark_coap_requests_total', help: 'CoAP requests by response code', labelNames: ['code'] as const, registers: [deps.metrics] });
    this.#rateLimited = new Counter({ name: 'bulwark_coap_rate_limited_total', help: 'CoAP requests answered 4.29 because the device was over its message rate (mqtt.publishRatePerSecond)', registers: [deps.metrics] });
  }

  async start(): Promise<number> {
    const server = createServer({ type: this.settings.host.includes(':') ? 'udp6' : 'udp4' }, (req, res) => void this.#serve(req, res));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.listen(this.settings.port, this.settings.host, (err?: Error) => (err ? reject(err) : resolve()));
    });
    const socket = (server as unknown as { _sock?: { address(): AddressInfo } })._sock;
    return socket?.address().port ?? this.settings.port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #serve(req: IncomingMessage, res: OutgoingMessage): Promise<void> {
    const arrived = preciseNow();
    let trace: MessageTrace | undefined;
    let code = '5.00';
    let body: unknown;
    let maxAgeS: number | undefined;
    try {
      const url = new URL(req.url, 'coap://device');
      if (req.method !== 'POST' || url.pathname !== '/t') throw Object.assign(new PlatformError('BULWARK_ERR_NOT_FOUND', 'POST /t?d=<device id>&s=<signature> is the only resource'), { coap: '4.04' });
      const deviceId = url.searchParams.get('d') ?? '';
      const signature = Buffer.from(url.searchParams.get('s') ?? '', 'base64url');
      if (deviceIdProblem(deviceId) || signature.length === 0) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'the query needs d=<device id> and s=<base64url signature>');
      await this.#authenticate(deviceId, req.payload, signature);
      // Checked after the signature, so that nobody can spend a device's budget in its name.
      const waitMs = this.deps.deviceRate?.tryTake(deviceId) ?? 0;
      if (waitMs > 0) {
        this.#rateLimited.inc();
        maxAgeS = Math.ceil(waitMs / 1000);
        throw Object.assign(new PlatformError('BULWARK_ERR_RATE_LIMITED', `over this device's message rate; retry in ${waitMs} ms`), { coap: '4.29' });
      }
      trace = this.deps.tracer?.begin(deviceId, arrived);
      const result = await this.deps.ingest.accept({ deviceId, transport: 'coap', topic: null, payload: req.payload, receivedAt: this.deps.clock.now(), trace });
      if (result.status === 'dead_lettered') {
        code = '4.22';
        body = { status: result.status, deadLetterId: result.id, reason: result.reason, problems: result.problems };
      } else {
        code = '2.04';
        body = { status: result.status };
      }
    } catch (err) {
      const e = isPlatformError(err) ? err : new PlatformError('BULWARK_ERR_INTERNAL', 'internal error', { cause: err });
      if (e.category === 'internal' || e.category === 'unavailable') this.deps.log.error({ err }, 'CoAP request failed');
      code = (err as { coap?: string }).coap ?? { unauthenticated: '4.01', forbidden: '4.03', not_found: '4.04', validation: '4.00', payload_too_large: '4.13', unavailable: '5.03' }[e.category as string] ?? '5.00';
      body = { error: { code: e.code, message: e.message } };
    }
    this.#requests.inc({ code });
    res.code = code;
    // RFC 8516: 4.29 Too Many Requests, with Max-Age saying when to try again.
    if (maxAgeS !== undefined) res.setOption('Max-Age', maxAgeS);
    res.setOption('Content-Format', 'application/json');
    res.end(JSON.stringify(body));
    if (trace) {
      trace.hop('gateway.ack');
      trace.end({ 'bulwark.outcome': (body as { status?: string }).status ?? 'failed' });
    }
  }

  /** The payload must be signed by the key of one of the device's live certificates. */
  async #authenticate(deviceId: string, payload: Buffer, signature: Buffer): Promise<void> {
    const now = this.deps.clock.now();
    const live = (await this.deps.identity.listCertificates(deviceId).catch(() => [])).filter((c) => c.revokedAt === null && c.notBefore <= now && c.notAfter > now);
    // 64 bytes: raw r||s (IEEE P1363, what small devices make, and short enough for a URI query); else DER.
    const dsaEncoding = signature.length === 64 ? 'ieee-p1363' : 'der';
    const cert = live.find((c) => {
      try {
        return verify('sha256', payload, { key: new X509Certificate(c.pem).publicKey, dsaEncoding }, signature);
      } catch {
        return false;
      }
    });
    if (!cert) throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'the signature does not verify with any live certificate of this device');
    await this.deps.identity.checkSession({ deviceId, fingerprint: cert.fingerprint, serial: cert.serial }).catch((err: unknown) => {
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', isPlatformError(err) ? err.message : 'not allowed');
    });
  }
}
