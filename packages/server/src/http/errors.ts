import { randomUUID } from 'node:crypto';
import { type ErrorCategory, type ErrorCode, PlatformError, isPlatformError } from '@bulwark/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

export const HTTP_STATUS: Readonly<Record<ErrorCategory, number>> = {
  validation: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly requestId: string; readonly details?: Readonly<Record<string, unknown>> };
}

/**
 * Fastify's own errors that are the caller's fault, mapped to platform codes. Routing errors
 * (a bad percent-encoding, a path parameter over the router's length bound) never reach a
 * route, its hooks or the error handler: `frameworkErrors` in app.ts sends them here too.
 */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BULWARK_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BULWARK_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BULWARK_ERR_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BULWARK_ERR_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_ROUTE_MISSING_CONTENT: 'BULWARK_ERR_BAD_REQUEST',
  FST_ERR_NOT_FOUND: 'BULWARK_ERR_NOT_FOUND',
};

/** Messages of our own where Fastify's would echo the whole path or name Fastify internals. */
const FRAMEWORK_MESSAGES: Readonly<Record<string, readonly [ErrorCode, string]>> = {
  FST_ERR_BAD_URL: ['BULWARK_ERR_BAD_REQUEST', 'the path is not valid percent-encoded UTF-8'],
  FST_ERR_MAX_PARAM_LENGTH: ['BULWARK_ERR_VALIDATION', 'a path parameter is longer than the API accepts'],
};

/** Turns anything thrown while serving a request into a PlatformError with a stable code. */
export function toPlatformError(err: unknown, limits: { readonly maxParamLength?: number } = {}): PlatformError {
  if (isPlatformError(err)) return err;
  const fe = err as Partial<FastifyError> & { validation?: unknown[]; validationContext?: string };
  if (fe.validation) {
    return new PlatformError('BULWARK_ERR_VALIDATION', `${fe.validationContext ?? 'request'} ${fe.message ?? 'is invalid'}`.replace(/^(\w+) \1/, '$1'), {
      details: { problems: fe.validation },
    });
  }
  const own = fe.code ? FRAMEWORK_MESSAGES[fe.code] : undefined;
  if (own) {
    const details = fe.code === 'FST_ERR_MAX_PARAM_LENGTH' && limits.maxParamLength !== undefined ? { maxLength: limits.maxParamLength } : undefined;
    return new PlatformError(own[0], details ? `${own[1]} (at most ${details.maxLength} characters)` : own[1], { cause: err, ...(details ? { details } : {}) });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new PlatformError(mapped, fe.message ?? mapped, { cause: err });
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return new PlatformError('BULWARK_ERR_MALFORMED_JSON', `the body is not valid JSON: ${err.message}`, { cause: err });
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new PlatformError('BULWARK_ERR_BAD_REQUEST', fe.message ?? 'bad request', { cause: err });
  }
  return new PlatformError('BULWARK_ERR_INTERNAL', 'internal error', { cause: err });
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: PlatformError): FastifyReply {
  const status = HTTP_STATUS[error.category];
  if (error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
  if (error.category === 'unauthenticated') void reply.header('www-authenticate', 'Bearer');
  // Also on errors raised before the onRequest hook that sets it (routing, framework errors).
  void reply.header('x-request-id', request.id);
  void reply.header('x-content-type-options', 'nosniff');
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      requestId: request.id,
      ...(error.details !== undefined && error.category !== 'internal' ? { details: error.details } : {}),
    },
  };
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * The raw answer to a request Node's HTTP parser refused before Fastify saw it (a bad request
 * line or header, an unknown method, headers over the size limit, a client too slow to send
 * them): the documented error body, BULWARK_ERR_BAD_REQUEST, and the connection closed.
 */
export function clientErrorResponse(err: { readonly code?: string }): string {
  const [status, reason, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'the request headers are larger than the server accepts']
        : [400, 'Bad Request', 'the request is not valid HTTP/1.1'];
  const requestId = randomUUID();
  const body: ErrorBody = { error: { code: 'BULWARK_ERR_BAD_REQUEST', message, requestId } };
  const text = JSON.stringify(body);
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` + `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${text}`;
}
