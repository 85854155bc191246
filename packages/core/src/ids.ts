import { randomBytes } from 'node:crypto';

/** Makes identifiers; injected so tests can make them predictable. */
export interface IdGen {
  /** A new identifier with the given prefix, e.g. `usr_3k9...`. */
  next(prefix: string): string;
}

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Random bytes taken from a pool filled 4 KiB at a time (one call into OpenSSL per ~200 ids, not one each). */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;
function randomPool(n: number): Buffer {
  if (used + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  used += n;
  return pool.subarray(used - n, used);
}

/** Random, URL-safe identifiers: prefix, underscore, 20 base-36 characters (about 103 bits). */
export const randomIds: IdGen = {
  next(prefix: string): string {
    const bytes = randomPool(20);
    let out = '';
    for (const b of bytes) out += ALPHABET[b % 36];
    return `${prefix}_${out}`;
  },
};

/** Sequential identifiers for tests: `usr_1`, `usr_2`, ... */
export class SequentialIds implements IdGen {
  #n = 0;
  next(prefix: string): string {
    this.#n += 1;
    return `${prefix}_${this.#n}`;
  }
}
