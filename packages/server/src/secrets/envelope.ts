import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { PlatformError } from '@bulwark/core';

/**
 * AES-256-GCM with a random 96-bit nonce. The additional data binds a ciphertext to the
 * place it belongs (a secret's name, a data key's id), so swapping two stored values fails
 * authentication instead of decrypting to the wrong secret.
 * Text form: `v1.<nonce>.<ciphertext>.<tag>`, each part base64url.
 */
const VERSION = 'v1';
export const KEY_BYTES = 32;

export function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [VERSION, nonce.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

export function open(key: Buffer, sealed: string, aad: string): Buffer {
  const [version, nonce, body, tag] = sealed.split('.');
  if (version !== VERSION || nonce === undefined || body === undefined || tag === undefined) {
    throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', `sealed value for "${aad}" has an unknown format`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', `sealed value for "${aad}" failed authentication`, { cause });
  }
}

/** A short public name for a key, so stored values can say which key wraps them without revealing it. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('bulwark-key-id:').update(key).digest('hex').slice(0, 16);
}
