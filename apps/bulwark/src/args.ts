import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { usageError } from './errors.js';

/** Parsers for option values; commander reports their errors as usage errors (exit 2). */

/** `a,b, c` → `['a', 'b', 'c']`. */
export function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function positiveInt(max: number) {
  return (value: string): number => {
    const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be a whole number from 1 to ${max}`);
    return n;
  };
}

/** A JSON object given inline or as the path of a file holding one. */
export function jsonObject(text: string, what: string): Record<string, unknown> {
  const source = existsSync(text) ? readFileSync(text, 'utf8') : text;
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw usageError(`${what}: not JSON and not a readable file (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw usageError(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** For a repeatable option: each use adds its value to the list. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `2h`, `7d` → milliseconds. */
export function duration(value: string): number {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('must be a duration such as 90s, 30m, 2h or 7d');
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** `01:00-05:00` UTC → minutes of the day (the end may be before the start: the window wraps past midnight). */
export function parseWindow(value: string): { startMinute: number; endMinute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(value);
  if (!m) throw new InvalidArgumentError('HH:MM-HH:MM in UTC, e.g. 01:00-05:00');
  return { startMinute: Number(m[1]) * 60 + Number(m[2]), endMinute: Number(m[3]) * 60 + Number(m[4]) };
}

export function percent(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('a percent from 0 to 100');
  return n;
}

/**
 * A point in time as epoch milliseconds: ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`),
 * epoch milliseconds, or a duration back from now (`15m`, `2h`, `7d`).
 */
export function pointInTime(value: string, now: () => number = Date.now): number {
  const text = value.trim();
  if (/^\d{10,}$/.test(text)) return Number(text);
  if (/^\d{1,9}(ms|s|m|h|d)$/.test(text)) return now() - duration(text);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError('a time: ISO 8601 (2026-01-31T12:00:00Z), epoch milliseconds, or a duration ago (15m, 2h, 7d)');
  return ms;
}
