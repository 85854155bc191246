/** Retry timing of a failing batch. */
export interface BackoffSettings {
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

/**
 * The wait before attempt `failures + 1`: exponential (base × 2^(failures-1)) up to the cap,
 * with half of it random (so that receivers coming back are not hit by every sender at once).
 * A receiver's Retry-After is honoured up to the cap.
 */
export function backoffMs(failures: number, s: BackoffSettings, random: () => number, retryAfterMs?: number): number {
  const exp = Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** Math.max(0, Math.min(failures - 1, 40)));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.min(s.retryMaxMs, Math.max(jittered, retryAfterMs ?? 0)));
}
