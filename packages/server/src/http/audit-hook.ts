import type { Logger } from '@bulwark/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditResult, AuditService } from '../audit/index.js';
import type { Metrics } from '../observe/metrics.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const REFUSED = new Set([401, 403, 429]);

/**
 * Records every state-changing call and every refused call in the audit log before the
 * response leaves, so a caller never sees a success the log does not know about.
 */
export function makeAuditHook(audit: AuditService, metrics: Metrics, log: Logger) {
  return async function auditOnSend(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const status = reply.statusCode;
    const route = request.routeOptions.url;
    if (route === undefined) return payload;
    const refused = REFUSED.has(status);
    if (READ_METHODS.has(request.method) && !refused) return payload;
    const result: AuditResult = status < 400 ? 'ok' : refused ? 'denied' : 'error';
    const configured = request.routeOptions.config.audit;
    const action = configured ?? (refused ? 'http.refused' : `http.${request.method.toLowerCase()}`);
    const code = status >= 400 ? errorCodeOf(payload) : undefined;
    try {
      await audit.record({
        actor: request.auth?.principal.id ?? request.auditActor ?? 'anonymous',
        action,
        target: request.auditTarget ?? null,
        result,
        requestId: request.id,
        source: request.ip,
        details: { method: request.method, route, status, ...(code ? { code } : {}) },
      });
    } catch (err) {
      metrics.auditFailures.inc();
      log.error({ err, reqId: request.id, action }, 'could not write the audit entry');
    }
    return payload;
  };
}

function errorCodeOf(payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined;
  const m = /"code":"(BULWARK_ERR_[A-Z_]+)"/.exec(payload);
  return m?.[1];
}
