import { PlatformError } from '@bulwark/core';
import type { FastifyRequest } from 'fastify';
import { type AccessService, type Throttle, hasScope } from '../access/index.js';
import type { Metrics } from '../observe/metrics.js';

export function isLoopback(address: string): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1' || address.startsWith('127.');
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
export function makeGuard(access: AccessService, throttle: Throttle, metrics: Metrics) {
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
    // Loopback means both ends agree: the socket peer and the client address behind any trusted proxy.
    if ('loopbackOrScope' in auth && token === undefined && isLoopback(request.ip) && isLoopback(request.socket.remoteAddress ?? '')) return;
    await throttle.assertNotLocked(`addr:${request.ip}`);
    if (token === undefined) {
      metrics.authFailures.inc({ reason: 'missing' });
      throw 'loopbackOrScope' in auth
        ? new PlatformError('BULWARK_ERR_NOT_LOOPBACK', 'unauthenticated requests are answered on loopback only')
        : new PlatformError('BULWARK_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <access token>"');
    }
    try {
      request.auth = await access.authenticate(token);
    } catch (err) {
      if (err instanceof PlatformError && err.category === 'unauthenticated') {
        metrics.authFailures.inc({ reason: err.code === 'BULWARK_ERR_TOKEN_EXPIRED' ? 'expired' : 'invalid_token' });
        // An expired token is a normal event, not an attack; only forged or revoked ones count towards lock-out.
        if (err.code !== 'BULWARK_ERR_TOKEN_EXPIRED' && (await throttle.recordFailure(`addr:${request.ip}`))) metrics.lockouts.inc({ kind: 'address' });
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
  };
}
