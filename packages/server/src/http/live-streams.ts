import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Logger } from '@bulwark/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { WebSocket } from 'ws';
import { type AuthContext, STREAM_TICKET_ROUTES } from '../access/index.js';
import type { EventBus, EventOf } from '../bus/index.js';

/**
 * Why a live stream was closed by the platform (the `reason` of `event: closed`, of the
 * WebSocket close frame, and of `bulwark_live_streams_closed_total`):
 * - `credentials_revoked`: its principal was disabled or its API key revoked;
 * - `credentials_expired`: its access token expired and its key or principal no longer holds.
 */
export type LiveStreamCloseReason = 'credentials_revoked' | 'credentials_expired';

/** WebSocket close code 1008, policy violation (RFC 6455 §7.4.1). */
export const WS_POLICY_VIOLATION = 1008;
const DEFAULT_CHECK_INTERVAL_MS = 1000;

interface Stream {
  readonly raw: IncomingMessage;
  readonly auth: AuthContext;
  readonly route: string;
  readonly requestId: string;
  readonly res: ServerResponse;
  readonly websocket: boolean;
  /** The socket, once the upgrade is done (WebSocket routes only). */
  ws: WebSocket | undefined;
  /** When the caller's credentials are next checked: the token's expiry, then one token lifetime later each time. */
  recheckAt: number;
  /** Decided before the stream had started; carried out as soon as it has. */
  pendingClose: LiveStreamCloseReason | undefined;
  checking: boolean;
}

export interface LiveStreamsDeps {
  readonly bus: EventBus;
  /** Whether the key and principal behind a caller still hold (AccessService.stillValid). */
  readonly stillValid: (auth: AuthContext) => Promise<boolean>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly closed: Counter<'reason'>;
  /** Lifetime of an access token: a stream found valid at its token's expiry is checked again this much later. */
  readonly tokenTtlMs: number;
  /** How often due checks run; 0 leaves it to whoever calls `check()` (default 1 s). */
  readonly checkIntervalMs?: number;
}

/**
 * Every open live stream (SSE and WebSocket, the routes in STREAM_TICKET_ROUTES) with the
 * credentials it was opened with, so that no route handler has to know: a stream closes
 * when `credentials.revoked` says its principal was disabled or its key revoked (the bus
 * carries that to every node in cluster mode), and when its access token expires and its
 * key or principal no longer holds. An SSE stream gets a last `event: closed` with
 * `{"reason": ...}` and ends; a WebSocket is closed with 1008 and the reason.
 */
export class LiveStreams {
  readonly #streams = new Map<IncomingMessage, Stream>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: LiveStreamsDeps) {}

  /** Adds the hook that registers live streams; call before the routes are registered, after the guard. */
  attach(app: FastifyInstance): void {
    app.addHook('preHandler', async (request, reply) => this.#track(request, reply.raw));
    // @fastify/websocket emits this with the upgraded socket and the request it came from.
    app.websocketServer.on('connection', (ws: WebSocket, raw: IncomingMessage) => this.#upgraded(ws, raw));
  }

  start(): void {
    this.#unsubscribe ??= this.deps.bus.subscribe('credentials.revoked', (e) => this.#revoked(e));
    const every = this.deps.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    if (every > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => void this.check(), every);
      this.#timer.unref();
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Live streams open now. */
  get open(): number {
    return this.#streams.size;
  }

  /**
   * Carries out closes decided before a stream had started, and checks the credentials of
   * every stream whose token has expired; resolves with how many streams it closed.
   */
  async check(): Promise<number> {
    const now = this.deps.clock.now();
    let closed = 0;
    const due: Stream[] = [];
    for (const s of this.#streams.values()) {
      if (s.pendingClose !== undefined) {
        if (this.#started(s) && this.#close(s, s.pendingClose)) closed += 1;
      } else if (s.recheckAt <= now && !s.checking && this.#started(s)) {
        due.push(s);
      }
    }
    await Promise.all(
      due.map(async (s) => {
        s.checking = true;
        try {
          if (await this.deps.stillValid(s.auth)) s.recheckAt = this.deps.clock.now() + this.deps.tokenTtlMs;
          else if (this.#close(s, 'credentials_expired')) closed += 1;
        } catch (err) {
          // Kept for now and checked again on the next round: a store that does not answer says nothing either way.
          this.deps.log.warn({ err, requestId: s.requestId }, 'could not re-check the credentials of a live stream');
        } finally {
          s.checking = false;
        }
      }),
    );
    return closed;
  }

  #track(request: FastifyRequest, res: ServerResponse): void {
    const route = request.routeOptions.url;
    const auth = request.auth;
    if (route === undefined || auth === undefined || !STREAM_TICKET_ROUTES.has(route)) return;
    const raw = request.raw;
    // Set by @fastify/websocket on an upgrade request.
    const websocket = (request as { ws?: boolean }).ws === true;
    this.#streams.set(raw, {
      raw,
      auth,
      route,
      requestId: request.id,
      res,
      websocket,
      ws: undefined,
      recheckAt: auth.tokenExpiresAt,
      pendingClose: undefined,
      checking: false,
    });
    const forget = () => this.#streams.delete(raw);
    // An SSE stream ends with its response; an upgraded connection with its socket.
    if (websocket) raw.socket.once('close', forget);
    else res.once('close', forget);
  }

  #upgraded(ws: WebSocket, raw: IncomingMessage): void {
    const s = this.#streams.get(raw);
    if (!s) return;
    s.ws = ws;
    ws.once('close', () => this.#streams.delete(raw));
    // Revoked while the upgrade was under way: close once the handler has subscribed and listens for 'close'.
    if (s.pendingClose !== undefined) setImmediate(() => this.#close(s, s.pendingClose ?? 'credentials_revoked'));
  }

  #revoked(e: EventOf<'credentials.revoked'>): void {
    for (const s of [...this.#streams.values()]) {
      if (s.auth.principal.id !== e.principalId || (e.keyId !== null && s.auth.keyId !== e.keyId)) continue;
      if (this.#started(s)) this.#close(s, 'credentials_revoked');
      else s.pendingClose = 'credentials_revoked';
    }
  }

  #started(s: Stream): boolean {
    return s.websocket ? s.ws !== undefined : s.res.headersSent;
  }

  /** Closes a started stream; false when it had closed already. */
  #close(s: Stream, reason: LiveStreamCloseReason): boolean {
    this.#streams.delete(s.raw);
    if (s.websocket) {
      const ws = s.ws;
      if (!ws || ws.readyState >= ws.CLOSING) return false;
      ws.close(WS_POLICY_VIOLATION, reason);
    } else {
      if (s.res.writableEnded || s.res.destroyed) return false;
      // The handler lets go of its source only when the request closes, a moment later; what it
      // writes until then fails with "write after end", which must not become an unhandled error.
      s.res.on('error', () => undefined);
      s.res.end(`event: closed\ndata: ${JSON.stringify({ reason })}\n\n`);
    }
    this.deps.closed.inc({ reason });
    this.deps.log.info({ reason, route: s.route, requestId: s.requestId, principalId: s.auth.principal.id, keyId: s.auth.keyId }, 'live stream closed');
    return true;
  }
}
