import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import { type Clock, isPlatformError } from '@bulwark/core';
import { HEADERS, signatureHeader } from './signing.js';
import { type RefusalReason, type Resolver, type TargetPolicy, checkUrl, classifyAddress, refused, resolveTarget, systemResolver } from './target-guard.js';

/** One signed POST to a receiver: what webhooks and alert notifications send. */
export interface DeliveryRequest {
  readonly url: string;
  /** The subscription's secret in clear (the HMAC key). */
  readonly secret: string;
  readonly webhookId: string;
  /** Stable across retries of the same batch. */
  readonly deliveryId: string;
  readonly attempt: number;
  readonly body: string;
}

export type DeliveryResult =
  | { readonly ok: true; readonly status: number; readonly durationMs: number }
  | {
      readonly ok: false;
      /** HTTP status, or null when no answer came (refused target, network error, timeout). */
      readonly status: number | null;
      readonly error: string;
      /** The receiver's Retry-After, in ms, when it gave one. */
      readonly retryAfterMs?: number;
      /** Set when the target was refused (SSRF guard), not tried. */
      readonly refused?: RefusalReason;
      readonly durationMs: number;
    };

export interface DeliverySettings extends TargetPolicy {
  readonly timeoutMs: number;
  /** Extra CA certificates (PEM) trusted besides the system's, for receivers with a private CA. */
  readonly ca?: string;
  readonly userAgent: string;
  /**
   * Rewrites a body just before it is signed and sent (privacy.pseudonymise names webhooks:
   * identifiers become pseudonyms); the signature covers the body actually sent. A body it
   * cannot rewrite is not sent (fail closed).
   */
  readonly rewriteBody?: (body: string) => string;
}

/** Bytes of a response body kept (for the error message); the rest is not read. */
const RESPONSE_BYTES = 2048;
/** An idle kept-alive connection is closed after this (sooner when the receiver's Keep-Alive header says so). */
const IDLE_MS = 4000;
/** Connections kept per receiver (host and port). */
const SOCKETS_PER_RECEIVER = 64;

/**
 * Signs and sends one delivery. The host is resolved once, every address checked against the
 * operator's policy, and the connection made to a checked address (the socket's peer is
 * checked again when it connects), so DNS that changes between the check and the connection
 * cannot redirect it. Connections are kept alive and reused for the same receiver (a reused
 * one was checked when it connected): a busy receiver costs no handshake per delivery.
 * Redirects are not followed. Never throws: every outcome is a result.
 */
export class WebhookDelivery {
  readonly #ca: string[] | undefined;
  readonly #agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: SOCKETS_PER_RECEIVER, timeout: IDLE_MS }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: SOCKETS_PER_RECEIVER, timeout: IDLE_MS }),
  };

  constructor(
    private readonly settings: DeliverySettings,
    private readonly clock: Clock,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.#ca = settings.ca === undefined ? undefined : [...rootCertificates, settings.ca];
  }

  /** Closes the kept-alive connections (idle ones do not hold the process open either way). */
  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  async deliver(req: DeliveryRequest): Promise<DeliveryResult> {
    const started = this.clock.now();
    const failed = (error: string, extra: { status?: number; retryAfterMs?: number; refused?: RefusalReason } = {}): DeliveryResult => ({
      ok: false,
      status: extra.status ?? null,
      error,
      durationMs: this.clock.now() - started,
      ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {}),
      ...(extra.refused ? { refused: extra.refused } : {}),
    });
    let url: URL;
    try {
      url = checkUrl(req.url, this.settings);
      // Checked here for the message; the lookup below checks again what the socket uses.
      await resolveTarget(url.hostname, this.settings, this.resolve);
    } catch (err) {
      if (isPlatformError(err)) return failed(err.message, { refused: (err.details?.reason as RefusalReason | undefined) ?? 'malformed' });
      return failed((err as Error).message);
    }
    let sent = req;
    try {
      if (this.settings.rewriteBody) sent = { ...req, body: this.settings.rewriteBody(req.body) };
    } catch (err) {
      return failed(`the body could not be pseudonymised: ${(err as Error).message}`);
    }
    try {
      const answer = await this.#post(url, sent);
      if (answer.status >= 200 && answer.status < 300) return { ok: true, status: answer.status, durationMs: this.clock.now() - started };
      const retryAfterMs = retryAfter(answer.retryAfter, this.clock.now());
      const snippet = answer.body.replace(/\s+/g, ' ').trim().slice(0, 200);
      return failed(`HTTP ${answer.status}${snippet ? `: ${snippet}` : ''}`, { status: answer.status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    } catch (err) {
      if (isPlatformError(err)) return failed(err.message, { refused: (err.details?.reason as RefusalReason | undefined) ?? 'reserved' });
      return failed((err as Error).message || String(err));
    }
  }

  #post(url: URL, req: DeliveryRequest): Promise<{ status: number; body: string; retryAfter: string | undefined }> {
    const body = Buffer.from(req.body);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': this.settings.userAgent,
      [HEADERS.signature]: signatureHeader(req.secret, req.body, this.clock.now()),
      [HEADERS.webhookId]: req.webhookId,
      [HEADERS.deliveryId]: req.deliveryId,
      [HEADERS.attempt]: String(req.attempt),
    };
    const lookup: LookupFunction = (hostname, options, callback) => {
      resolveTarget(hostname, this.settings, this.resolve).then(
        (addresses) => {
          if (options.all) callback(null, addresses);
          else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
        },
        (err: Error) => callback(err as NodeJS.ErrnoException, '', 0),
      );
    };
    const tls = url.protocol === 'https:';
    const send = tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const r = send(
        url,
        {
          method: 'POST',
          headers,
          lookup,
          timeout: this.settings.timeoutMs,
          agent: tls ? this.#agents.https : this.#agents.http,
          ...(url.protocol === 'https:' ? { minVersion: 'TLSv1.2' as const, ...(this.#ca ? { ca: this.#ca } : {}) } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (chunk: Buffer) => {
            if (kept < RESPONSE_BYTES) chunks.push(chunk.subarray(0, RESPONSE_BYTES - kept));
            kept += chunk.length;
            // Enough to say what went wrong: the rest is not read.
            if (kept >= RESPONSE_BYTES) res.destroy();
          });
          const done = () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter: headerText(res.headers['retry-after']) });
          res.on('end', done);
          res.on('close', done);
          res.on('error', done);
        },
      );
      const deadline = setTimeout(() => r.destroy(new Error(`no answer within ${this.settings.timeoutMs} ms`)), this.settings.timeoutMs);
      r.on('close', () => clearTimeout(deadline));
      r.on('timeout', () => r.destroy(new Error(`no answer within ${this.settings.timeoutMs} ms`)));
      r.on('error', reject);
      r.on('socket', (socket: Socket) => {
        // A reused connection was checked when it connected.
        if (!socket.connecting) return;
        socket.once('connect', () => {
          // The address actually connected to, whatever resolved it.
          const kind = socket.remoteAddress ? classifyAddress(socket.remoteAddress) : 'reserved';
          if (kind && !this.settings.allowPrivateTargets) r.destroy(refused(kind, `connected to ${socket.remoteAddress} (${kind}), which webhooks may not reach`));
        });
      });
      r.end(body);
    });
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Retry-After as seconds or an HTTP date, in ms from now. */
function retryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,7}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
