import { createHmac, timingSafeEqual } from 'node:crypto';
import { PlatformError } from '@bulwark/core';
import type { Grant } from './scopes.js';

/**
 * Short-lived access tokens: `bwt.<claims>.<signature>`, claims as base64url JSON, signed
 * with HMAC-SHA256 under a token-signing key kept in the secret vault and named by the `tk`
 * claim (keys rotate: token-keys.ts). Stateless to verify; the API key and principal they name
 * are still checked on every request, so revoking a key or disabling a principal ends its
 * tokens at once.
 */
export interface TokenClaims {
  readonly v: 1;
  /** Principal id. */
  readonly sub: string;
  /** API key id the token was exchanged from. */
  readonly kid: string;
  readonly scp: readonly Grant[];
  /** Issued at and expiry, milliseconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  /** The token-signing key; absent in tokens of versions before key rotation. */
  readonly tk?: string;
}

const PREFIX = 'bwt';

function sign(key: Buffer, body: string): Buffer {
  return createHmac('sha256', key).update(`${PREFIX}.${body}`).digest();
}

export function issueToken(key: Buffer, claims: TokenClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${PREFIX}.${body}.${sign(key, body).toString('base64url')}`;
}

/**
 * Checks a token's signature with the key its `tk` claim names (read before the signature is
 * checked, for that choice only), then its claims and expiry.
 */
export async function verifyToken(keyFor: (id: string | undefined) => Promise<Buffer | undefined>, token: string, nowMs: number): Promise<TokenClaims> {
  const parts = token.split('.');
  const [prefix, body, sig] = parts;
  if (parts.length !== 3 || prefix !== PREFIX || !body || !sig) {
    throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token is malformed');
  }
  let claims: TokenClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenClaims;
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token claims are not JSON', { cause });
  }
  if (typeof claims !== 'object' || claims === null || (claims.tk !== undefined && typeof claims.tk !== 'string')) {
    throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token claims are malformed');
  }
  const key = await keyFor(claims.tk);
  if (!key) throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token was signed with a key that is retired or unknown');
  const expected = sign(key, body);
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token signature does not verify');
  }
  if (claims.v !== 1 || typeof claims.sub !== 'string' || typeof claims.kid !== 'string' || !Array.isArray(claims.scp) || typeof claims.exp !== 'number') {
    throw new PlatformError('BULWARK_ERR_TOKEN_INVALID', 'the access token claims are incomplete');
  }
  if (claims.exp <= nowMs) throw new PlatformError('BULWARK_ERR_TOKEN_EXPIRED', 'the access token has expired');
  return claims;
}
