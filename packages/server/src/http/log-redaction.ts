import type { FastifyRequest } from 'fastify';

/** Query parameters whose values are credentials: stream tickets, tokens, keys, secrets, passwords, claim tokens. */
const SECRET_PARAM = /ticket|token|key|secret|passw|claim/i;
export const REDACTED = '[redacted]';

function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * The URL with the value of every credential-like query parameter replaced by
 * `[redacted]`; the path and other parameters are kept as sent. The name is matched
 * after percent-decoding, so `tick%65t=` is caught too.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const pairs = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      return SECRET_PARAM.test(decodedName(pair.slice(0, eq))) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    });
  return `${url.slice(0, q)}?${pairs.join('&')}`;
}

/** Fastify's request serializer (the same fields), with credentials taken out of the URL. */
export function requestLogSerializer(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
