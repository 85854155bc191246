import { randomBytes } from 'node:crypto';
import { type Clock, PlatformError } from '@bulwark/core';

/**
 * Browsers cannot put an Authorization header on an EventSource or a WebSocket. A stream
 * ticket stands in for the bearer token there, and only there: opaque, single use, valid
 * for `ttlMs` (30 s), kept in this process's memory, and bound to the access token it was
 * issued for, so it carries exactly that token's principal and scopes, and the key and
 * principal are checked again when it is redeemed.
 */
export const STREAM_TICKET_ROUTES: ReadonlySet<string> = new Set(['/api/v1/devices/:id/telemetry/live', '/api/v1/telemetry/live', '/api/v1/telemetry/ws', '/api/v1/devices/:id/logs/live']);

export const STREAM_TICKET_TTL_MS = 30_000;
const PREFIX = 'bst.';
/** Outstanding tickets kept at most; past it the oldest are forgotten (they would expire anyway). */
const MAX_OUTSTANDING = 10_000;

interface Outstanding {
  readonly token: string;
  readonly expiresAt: number;
}

/** Issues and spends stream tickets: in this process (`StreamTickets`) or shared by a cluster's nodes. */
export interface TicketBook {
  issue(accessToken: string): { ticket: string; expiresAt: number } | Promise<{ ticket: string; expiresAt: number }>;
  /** Spends the ticket (whatever happens next) and returns the access token it stands for. */
  redeem(ticket: string, route: string | undefined): string | Promise<string>;
}

/** A fresh ticket's text. */
export const newTicket = () => PREFIX + randomBytes(32).toString('base64url');

/** Refuses a ticket offered on any route but a live stream. */
export function checkTicketRoute(route: string | undefined): void {
  if (route === undefined || !STREAM_TICKET_ROUTES.has(route)) {
    throw new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'a stream ticket opens a live stream only; send "Authorization: Bearer <access token>"');
  }
}

export const ticketUnknown = () => new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the stream ticket is unknown, already used or expired; ask POST /api/v1/auth/stream-ticket for a new one');

export class StreamTickets implements TicketBook {
  readonly #tickets = new Map<string, Outstanding>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = STREAM_TICKET_TTL_MS,
  ) {}

  issue(accessToken: string): { ticket: string; expiresAt: number } {
    const now = this.clock.now();
    this.#prune(now);
    const ticket = newTicket();
    const expiresAt = now + this.ttlMs;
    this.#tickets.set(ticket, { token: accessToken, expiresAt });
    return { ticket, expiresAt };
  }

  /**
   * Takes the ticket out (whatever happens next, it is spent) and returns the access token
   * it stands for. `route` is the matched route pattern; any other than a live stream is refused.
   */
  redeem(ticket: string, route: string | undefined): string {
    const found = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    checkTicketRoute(route);
    if (!found || found.expiresAt <= this.clock.now()) throw ticketUnknown();
    return found.token;
  }

  get outstanding(): number {
    return this.#tickets.size;
  }

  #prune(now: number): void {
    // Every ticket lives equally long, so insertion order is expiry order.
    for (const [ticket, t] of this.#tickets) {
      if (t.expiresAt > now && this.#tickets.size < MAX_OUTSTANDING) break;
      this.#tickets.delete(ticket);
    }
  }
}
