// Checks a Bulwark webhook delivery: plain Node, no dependencies. Copy it into your receiver.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Seconds a signature stays acceptable: older (or this far in the future) is refused as a replay. */
export const REPLAY_WINDOW_S = 300;

/**
 * `header` is the Bulwark-Signature header (`t=<unix seconds>,v1=<hex>`), `rawBody` the
 * request body exactly as received (a string or Buffer: never a re-serialised object).
 * Returns null when the delivery is genuine, or why it is not.
 */
export function checkSignature(secret, header, rawBody, nowMs = Date.now()) {
  const parts = String(header ?? '')
    .split(',')
    .map((p) => p.trim());
  const t = Number(parts.find((p) => p.startsWith('t='))?.slice(2));
  const signatures = parts.filter((p) => p.startsWith('v1=')).map((p) => p.slice(3));
  if (!Number.isSafeInteger(t) || signatures.length === 0) return 'malformed signature header';
  if (Math.abs(Math.floor(nowMs / 1000) - t) > REPLAY_WINDOW_S) return 'timestamp outside the replay window';
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  const ok = signatures.some((s) => /^[0-9a-f]{64}$/.test(s) && timingSafeEqual(Buffer.from(s, 'hex'), expected));
  return ok ? null : 'signature does not match';
}
