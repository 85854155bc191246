import type { Logger } from '@bulwark/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditResult, AuditService } from '../audit/index.js';
import type { Metrics } from '../observe/index.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Refusals worth a chain entry. 429s are counted in metrics only: a flood must not become a flood of audit writes. */
const REFUSED = new Set([401, 403]);

/**
 * Records every state-changing call and every refused (401/403) call in the audit log
 * before the response leaves. If the audit write itself fails, the response still goes out
 * (the change it reports has already happened); the failure is logged at error level and
 * counted in bulwark_audit_write_failures_total, which an operator must alert on.
 */
export function makeAuditHook(audit: AuditService, metrics: Metrics, log: Logger) {
  return async function auditOnSend(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const status = reply.statusCode;
    const route = request.routeOptions.url;
    if (route === undefined || status === 429) return payload;
    const refused = REFUSED.has(status);
    if (READ_METHODS.has(request.method) && !refused && request.auditRead === undefined) return payload;
    const revoked = status === 401 ? request.auditRevoked : undefined;
    const result: AuditResult = status < 400 ? 'ok' : revoked !== undefined ? 'revoked' : refused ? 'denied' : 'error';
    const configured = request.auditRead ?? request.routeOptions.config.audit;
    const action = configured ?? (refused ? 'http.refused' : `http.${request.method.toLowerCase()}`);
    const code = status >= 400 ? errorCodeOf(payload) : undefined;
    try {
      await audit.record({
        actor: request.auth?.principal.id ?? revoked ?? request.auditActor ?? 'anonymous',
        action,
        target: request.auditTarget ?? null,
        result,
        requestId: request.id,
        source: request.ip,
        details: { method: request.method, route, status, ...(code ? { code } : {}), ...request.auditDetails },
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
