import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { usageError } from './errors.js';

/** Parsers for option values; commander reports their errors as usage errors (exit 2). */

/** `a,b, c` → `['a', 'b', 'c']`. */
export function commaList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
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
