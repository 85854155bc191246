import { InvalidArgumentError } from 'commander';

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
