import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * API keys look like `bwk.<key id>.<secret>`: the id finds the stored record, the secret is
 * checked against its scrypt hash. Only the hash is ever stored.
 */
export const KEY_PREFIX = 'bwk';
const KEY_PATTERN = /^bwk\.([a-z0-9_]{4,64})\.([A-Za-z0-9_-]{32,128})$/;

export interface ParsedKey {
  readonly keyId: string;
  readonly secret: string;
}

export function parseApiKey(text: string): ParsedKey | undefined {
  const m = KEY_PATTERN.exec(text);
  return m && m[1] !== undefined && m[2] !== undefined ? { keyId: m[1], secret: m[2] } : undefined;
}

export function newKeySecret(): string {
  return randomBytes(32).toString('base64url');
}

export function formatApiKey(keyId: string, secret: string): string {
  return `${KEY_PREFIX}.${keyId}.${secret}`;
}

/** scrypt cost: N=2^14, r=8, p=1 (about 50 ms here); recorded in the hash so it can be raised later. */
const N = 16384;
const R = 8;
const P = 1;
const LEN = 32;

function derive(secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, LEN, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, N, R, P);
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !n || !r || !p || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await derive(secret, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
