import { PlatformError } from '@bulwark/core';
import type { FastifyRequest } from 'fastify';
import { type AccessService, RevokedCredentialError, Throttle, hasScope } from '../access/index.js';
import type { Metrics } from '../observe/index.js';

export function isLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1' || address.startsWith('127.');
}

/** `?ticket=` as the router parsed it; the guard removes it before validation sees the query. */
function streamTicket(request: FastifyRequest): string | undefined {
  const query = request.query as Record<string, unknown> | undefined;
  const ticket = query?.ticket;
  if (ticket === undefined) return undefined;
  delete query?.ticket;
  return typeof ticket === 'string' ? ticket : '';
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? '';
}

/**
 * The one gate every request passes before its body is even read: per-address rate limit,
 * lock-out, authentication, scope check and per-principal rate limit, in that order.
 */
export function makeGuard(access: AccessService, throttle: Throttle, metrics: Metrics, devices: { anyContains(groups: readonly string[], deviceId: string): Promise<boolean> }) {
  return async function guard(request: FastifyRequest): Promise<void> {
    const auth = request.routeOptions.config.auth;
    if (!auth) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`);
    try {
      await throttle.limitAddress(request.ip);
    } catch (err) {
      metrics.rateLimited.inc({ per: 'address' });
      throw err;
    }
    if ('public' in auth) return;
    const token = bearerToken(request);
    const ticket = streamTicket(request);
    // Loopback means both ends agree: the socket peer and the client address behind any trusted proxy.
    if ('loopbackOrScope' in auth && token === undefined && isLoopback(request.ip) && isLoopback(request.socket.remoteAddress ?? '')) return;
    await throttle.assertNotLocked(Throttle.address(request.ip));
    if (token === undefined && ticket === undefined) {
      metrics.authFailures.inc({ reason: 'missing' });
      throw 'loopbackOrScope' in auth ? new PlatformError('BULWARK_ERR_NOT_LOOPBACK', 'unauthenticated requests are answered on loopback only') : new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <access token>"');
    }
    if (token !== undefined && ticket !== undefined) {
      throw new PlatformError('BULWARK_ERR_BAD_REQUEST', 'send a bearer token or a stream ticket, not both');
    }
    try {
      // A ticket (live streams only: EventSource and WebSocket cannot send a header) is spent
      // here and then checked like the access token it was issued for.
      request.auth = token !== undefined ? await access.authenticate(token) : await access.redeemStreamTicket(ticket ?? '', request.routeOptions.url);
    } catch (err) {
      if (err instanceof RevokedCredentialError) request.auditRevoked = err.principalId;
      if (err instanceof PlatformError && err.category === 'unauthenticated') {
        const reason = token === undefined ? 'invalid_stream_ticket' : err.code === 'BULWARK_ERR_TOKEN_EXPIRED' ? 'expired' : 'invalid_token';
        metrics.authFailures.inc({ reason });
        // An expired token is a normal event, not an attack; only forged or revoked ones count towards lock-out.
        if (reason !== 'expired' && (await throttle.recordFailure(Throttle.address(request.ip)))) metrics.lockouts.inc({ kind: 'address' });
      }
      throw err;
    }
    const scope = 'scope' in auth ? auth.scope : 'loopbackOrScope' in auth ? auth.loopbackOrScope : undefined;
    if (scope !== undefined && !hasScope(request.auth.scopes, scope)) {
      throw new PlatformError('BULWARK_ERR_FORBIDDEN', `this call needs the ${scope} scope`, { details: { requiredScope: scope } });
    }
    try {
      await throttle.limitPrincipal(request.auth.principal.id);
    } catch (err) {
      metrics.rateLimited.inc({ per: 'principal' });
      throw err;
    }
    const groups = request.auth.principal.deviceGroups;
    if (groups === null) return;
    const limit = request.routeOptions.config.groupLimit;
    if (limit === undefined) {
      throw new PlatformError('BULWARK_ERR_FORBIDDEN', 'this call reaches the whole fleet; this principal is limited to device groups', { details: { deviceGroups: groups } });
    }
    if (limit === 'device') {
      const id = (request.params as { id?: unknown } | undefined)?.id;
      // Outside the groups is not found, as for a device that does not exist: nothing is revealed.
      if (typeof id !== 'string' || !(await devices.anyContains(groups, id))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no device ${String(id)}`);
    }
  };
}
