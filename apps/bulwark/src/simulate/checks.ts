/**
 * Checks for a document read from a file (a scenario): each records a problem with its path
 * and reason and returns a fallback, so that one pass lists every problem at once.
 */

export type Problems = { path: string; reason: string }[];

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An object (a mapping); `optional`: undefined is fine. */
export function obj(value: unknown, path: string, problems: Problems, optional = false): Record<string, unknown> | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  problems.push({ path, reason: value === undefined ? 'is required' : 'must be an object' });
  return undefined;
}

/** Refuses keys other than `allowed` (a typo would otherwise be ignored silently). */
export function keysOf(o: Record<string, unknown>, path: string, allowed: readonly string[], problems: Problems): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) problems.push({ path: path ? `${path}.${k}` : k, reason: `unknown key (known: ${allowed.join(', ')})` });
}

export function list(value: unknown, path: string, problems: Problems, bounds: { min?: number; max: number }): unknown[] {
  if (!Array.isArray(value)) {
    problems.push({ path, reason: 'must be a list' });
    return [];
  }
  if (value.length < (bounds.min ?? 0) || value.length > bounds.max) problems.push({ path, reason: `must hold ${bounds.min ?? 0} to ${bounds.max} entries` });
  return value.slice(0, bounds.max);
}

export function str(value: unknown, path: string, problems: Problems, o: { pattern: RegExp; fallback?: string }): string {
  if (value === undefined && o.fallback !== undefined) return o.fallback;
  if (typeof value === 'string' && o.pattern.test(value)) return value;
  problems.push({ path, reason: value === undefined ? 'is required' : `must match ${o.pattern.source}` });
  return o.fallback ?? '';
}

export function num(value: unknown, path: string, problems: Problems, o: { min: number; max: number; integer?: boolean; fallback?: number }): number {
  if (value === undefined && o.fallback !== undefined) return o.fallback;
  if (typeof value === 'number' && Number.isFinite(value) && value >= o.min && value <= o.max && (!o.integer || Number.isInteger(value))) return value;
  problems.push({ path, reason: value === undefined ? 'is required' : `must be a${o.integer ? ' whole' : ''} number from ${o.min} to ${o.max}` });
  return o.fallback ?? o.min;
}

/** A share: a fraction 0-1, or a percent string such as "5%". */
export function fraction(value: unknown, path: string, problems: Problems, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && value >= 0 && value <= 1) return value;
  const m = typeof value === 'string' ? /^(\d{1,3}(?:\.\d+)?)%$/.exec(value.trim()) : null;
  if (m && Number(m[1]) <= 100) return Number(m[1]) / 100;
  problems.push({ path, reason: 'must be a share: a number from 0 to 1, or a percent such as "5%"' });
  return fallback;
}

/** "30s", "5m", "2h", "1d", "250ms", or milliseconds. */
export function duration(value: unknown, path: string, problems: Problems, o: { min: number; max: number; fallback?: number }): number {
  if (value === undefined && o.fallback !== undefined) return o.fallback;
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isInteger(value)) ms = value;
  else if (typeof value === 'string') {
    const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(value.trim());
    if (m) ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  if (ms !== undefined && ms >= o.min && ms <= o.max) return ms;
  problems.push({ path, reason: value === undefined ? 'is required' : ms === undefined ? 'must be a duration such as "30s", "5m", "2h" or milliseconds' : `must be from ${o.min} ms to ${o.max} ms` });
  return o.fallback ?? o.min;
}
