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

/** Fastify's own errors that are the caller's fault, mapped to platform codes. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BULWARK_ERR_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BULWARK_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BULWARK_ERR_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BULWARK_ERR_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'BULWARK_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/** Turns anything thrown while serving a request into a PlatformError with a stable code. */
export function toPlatformError(err: unknown): PlatformError {
  if (isPlatformError(err)) return err;
  const fe = err as Partial<FastifyError> & { validation?: unknown[]; validationContext?: string };
  if (fe.validation) {
    return new PlatformError('BULWARK_ERR_VALIDATION', `${fe.validationContext ?? 'request'} ${fe.message ?? 'is invalid'}`.replace(/^(\w+) \1/, '$1'), {
      details: { problems: fe.validation },
    });
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
