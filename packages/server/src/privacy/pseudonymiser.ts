import { createHmac } from 'node:crypto';
import { type IdentifierKind, PSEUDONYM_PREFIX } from './privacy.js';

/**
 * Keyed pseudonyms of identifiers: HMAC-SHA-256 under a key of its own, with the kind in
 * the hashed text, so the same device always maps to the same pseudonym (joins across
 * exports, webhooks and logs still work) while nobody without the key can compute or
 * reverse one. 128 bits of the HMAC are kept, in hex, behind a prefix naming the kind.
 */
export class Pseudonymiser {
  readonly #key: Buffer;
  /** Recent answers: a busy device's id is hashed once, not once per log line or reading. */
  readonly #cache = new Map<string, string>();

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('a pseudonym key needs at least 32 bytes');
    this.#key = Buffer.from(key);
  }

  pseudonym(kind: IdentifierKind, value: string): string {
    const cacheKey = `${kind}\u0000${value}`;
    const hit = this.#cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const p = `${PSEUDONYM_PREFIX[kind]}${createHmac('sha256', this.#key).update(`${kind}\u0000${value}`).digest('hex').slice(0, 32)}`;
    if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(cacheKey, p);
    return p;
  }

  device(id: string): string {
    return this.pseudonym('devices', id);
  }
}

const CACHE_ENTRIES = 10_000;
