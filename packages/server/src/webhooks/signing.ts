import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Header names every delivery carries. */
export const HEADERS = {
  signature: 'bulwark-signature',
  webhookId: 'bulwark-webhook-id',
  deliveryId: 'bulwark-delivery-id',
  attempt: 'bulwark-delivery-attempt',
} as const;

/** How old a signature timestamp a receiver should accept (the documented replay window). */
export const REPLAY_WINDOW_S = 300;

/** A new subscription secret: `whsec_` and 32 random bytes, base64url. The HMAC key is this whole text. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` */
export function signatureHeader(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${hmac(secret, t, body)}`;
}

function hmac(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

export type Verification = { readonly ok: true; readonly t: number } | { readonly ok: false; readonly reason: 'malformed' | 'too_old' | 'in_future' | 'mismatch' };

/**
 * What a receiver does (and what examples/webhook-receiver does in plain Node): recompute
 * the HMAC over the raw body and compare in constant time; refuse a timestamp outside the
 * replay window. Any `v1=` may match (a header may carry several).
 */
export function verifySignature(secret: string, header: string, body: string, nowMs: number, windowS = REPLAY_WINDOW_S): Verification {
  const parts = header.split(',').map((p) => p.trim());
  const t = Number(parts.find((p) => p.startsWith('t='))?.slice(2));
  const given = parts.filter((p) => p.startsWith('v1=')).map((p) => p.slice(3));
  if (!Number.isSafeInteger(t) || given.length === 0) return { ok: false, reason: 'malformed' };
  const age = Math.floor(nowMs / 1000) - t;
  if (age > windowS) return { ok: false, reason: 'too_old' };
  if (age < -windowS) return { ok: false, reason: 'in_future' };
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  const match = given.some((g) => /^[0-9a-f]{64}$/.test(g) && timingSafeEqual(Buffer.from(g, 'hex'), expected));
  return match ? { ok: true, t } : { ok: false, reason: 'mismatch' };
}
