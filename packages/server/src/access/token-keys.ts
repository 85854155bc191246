import { randomBytes } from 'node:crypto';
import type { Clock } from '@bulwark/core';

/** The keys access tokens are signed with, as the access service uses them. */
export interface TokenKeys {
  /** The key new tokens are signed with, and its id (the token's `tk` claim). */
  signing(): Promise<{ readonly id: string; readonly key: Buffer }>;
  /** The key a token of key `id` verifies with; undefined when that key is unknown or retired. No id: a token from before key ids. */
  verifying(id: string | undefined): Promise<Buffer | undefined>;
}

/** One key for everything: recovery tools and unit tests. */
export const fixedTokenKey = (key: Buffer): TokenKeys => ({
  signing: async () => ({ id: 'fixed', key }),
  verifying: async () => key,
});

/** Where the keys are kept: the secret vault (sealed under a data key). */
export interface TokenKeyVault {
  get(name: string): Promise<Buffer | undefined>;
  put(name: string, plaintext: Buffer): Promise<void>;
  listNames(): Promise<string[]>;
}

/** Each key is a secret of its own: a rotation adds one and never rewrites another, so two at once lose nothing. */
export const TOKEN_KEY_PREFIX = 'access.token-key.';
/** The single key of versions before rotation: tokens without a key id verify with it until a newer key replaced it for a token lifetime. */
export const LEGACY_TOKEN_KEY = 'access.token-signing-key';
const LEGACY_ID = 'legacy';
/** How stale this node's view of the keys may get: another node's rotation reaches it within this. */
const RELOAD_MS = 30_000;
/** An unknown key id makes a node look again at most this often (a forged id cannot make it read the store on every request). */
const UNKNOWN_RELOAD_MS = 1000;

interface Key {
  readonly id: string;
  readonly key: Buffer;
  readonly createdAt: number;
}

export interface TokenKeyStatus {
  readonly current: string;
  /** Keys whose tokens are still accepted, newest first; `acceptedUntil` null for the current one. */
  readonly accepted: readonly { readonly id: string; readonly createdAt: number; readonly acceptedUntil: number | null }[];
}

/**
 * The token-signing keys: the newest signs; an older one still verifies until every token it
 * could have signed has expired (its successor's creation + the token lifetime + the time a
 * node takes to notice a rotation). Rotating therefore logs nobody out. Ids sort by creation
 * (`<13-digit ms>-<random>`).
 */
export class TokenKeyRing implements TokenKeys {
  #keys: Key[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  private constructor(
    private readonly vault: TokenKeyVault,
    private readonly clock: Clock,
    private readonly tokenTtlMs: number,
  ) {}

  /** Loads the keys, making the first one on a new installation. */
  static async open(vault: TokenKeyVault, clock: Clock, tokenTtlMs: number): Promise<TokenKeyRing> {
    const ring = new TokenKeyRing(vault, clock, tokenTtlMs);
    await ring.#load();
    if (ring.#keys.length === 0) await ring.rotate();
    return ring;
  }

  async signing(): Promise<{ id: string; key: Buffer }> {
    if (this.clock.now() - this.#loadedAt > RELOAD_MS) await this.#load();
    const newest = this.#keys.at(-1);
    if (!newest) throw new Error('no token-signing key is loaded');
    return newest;
  }

  async verifying(id: string | undefined): Promise<Buffer | undefined> {
    const wanted = id ?? LEGACY_ID;
    const age = this.clock.now() - this.#loadedAt;
    // Stale: another node may have rotated, retiring a key this node still takes for current.
    if (age > RELOAD_MS || (age > UNKNOWN_RELOAD_MS && !this.#keys.some((k) => k.id === wanted))) await this.#load();
    const i = this.#keys.findIndex((k) => k.id === wanted);
    if (i < 0) return undefined;
    const until = this.#acceptedUntil(i);
    return until === null || this.clock.now() < until ? this.#keys[i]!.key : undefined;
  }

  /** Adds a new key that signs from now on; the one it replaces verifies for another token lifetime. */
  async rotate(): Promise<TokenKeyStatus> {
    const now = this.clock.now();
    const id = `${String(now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
    await this.vault.put(`${TOKEN_KEY_PREFIX}${id}`, randomBytes(32));
    // A load already under way may have listed the keys before this one: load again after it.
    await this.#loading;
    await this.#load();
    return this.status();
  }

  status(): TokenKeyStatus {
    const accepted = this.#keys
      .map((k, i) => ({ id: k.id, createdAt: k.createdAt, acceptedUntil: this.#acceptedUntil(i) }))
      .filter((k) => k.acceptedUntil === null || k.acceptedUntil > this.clock.now())
      .reverse();
    return { current: this.#keys.at(-1)?.id ?? '', accepted };
  }

  #acceptedUntil(i: number): number | null {
    const successor = this.#keys[i + 1];
    return successor === undefined ? null : successor.createdAt + this.tokenTtlMs + RELOAD_MS;
  }

  #load(): Promise<void> {
    this.#loading ??= (async () => {
      const names = await this.vault.listNames();
      const found = [
        ...(names.includes(LEGACY_TOKEN_KEY) ? [{ name: LEGACY_TOKEN_KEY, id: LEGACY_ID, createdAt: 0 }] : []),
        ...names
          .filter((n) => n.startsWith(TOKEN_KEY_PREFIX))
          .sort()
          .map((name) => {
            const id = name.slice(TOKEN_KEY_PREFIX.length);
            return { name, id, createdAt: Number(id.slice(0, id.indexOf('-'))) };
          }),
      ];
      const keys: Key[] = [];
      for (const [i, k] of found.entries()) {
        // A retired key is not even opened: its tokens are refused as if it did not exist.
        const successor = found[i + 1];
        if (successor && successor.createdAt + this.tokenTtlMs + RELOAD_MS <= this.clock.now()) continue;
        const key = await this.vault.get(k.name);
        if (key) keys.push({ id: k.id, key, createdAt: k.createdAt });
      }
      this.#keys = keys;
      this.#loadedAt = this.clock.now();
    })().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }
}
