import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { PlatformError } from '@bulwark/core';

/**
 * AES-256-GCM with a random 96-bit nonce. The additional data binds a ciphertext to the
 * place it belongs (a secret's name, a data key's id), so swapping two stored values fails
 * authentication instead of decrypting to the wrong secret.
 * Text form: `v1.<nonce>.<ciphertext>.<tag>`, each part base64url.
 *
 * The cipher itself is an `Aead`: in this process for data keys (and a master key from a
 * file or the environment), or inside a PKCS#11 token for a master key held there; the text
 * form is the same for both.
 */
const VERSION = 'v1';
export const KEY_BYTES = 32;

/** AES-256-GCM with one key: 16-byte tags, 12-byte nonces. */
export interface Aead {
  encrypt(plaintext: Buffer, nonce: Buffer, aad: Buffer): { body: Buffer; tag: Buffer };
  /** Throws when the tag does not authenticate. */
  decrypt(body: Buffer, tag: Buffer, nonce: Buffer, aad: Buffer): Buffer;
}

/** AES-256-GCM in this process, with a key held in memory. */
export function softwareAead(key: Buffer): Aead {
  return {
    encrypt(plaintext, nonce, aad) {
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return { body, tag: cipher.getAuthTag() };
    },
    decrypt(body, tag, nonce, aad) {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    },
  };
}

export function sealWith(aead: Aead, plaintext: Buffer, aad: string): string {
  const nonce = randomBytes(12);
  const { body, tag } = aead.encrypt(plaintext, nonce, Buffer.from(aad, 'utf8'));
  return [VERSION, nonce.toString('base64url'), body.toString('base64url'), tag.toString('base64url')].join('.');
}

export function openWith(aead: Aead, sealed: string, aad: string): Buffer {
  const [version, nonce, body, tag] = sealed.split('.');
  if (version !== VERSION || nonce === undefined || body === undefined || tag === undefined) {
    throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', `sealed value for "${aad}" has an unknown format`);
  }
  try {
    return aead.decrypt(Buffer.from(body, 'base64url'), Buffer.from(tag, 'base64url'), Buffer.from(nonce, 'base64url'), Buffer.from(aad, 'utf8'));
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', `sealed value for "${aad}" failed authentication`, { cause });
  }
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  return sealWith(softwareAead(key), plaintext, aad);
}

export function open(key: Buffer, sealed: string, aad: string): Buffer {
  return openWith(softwareAead(key), sealed, aad);
}

/** A short public name for a key, so stored values can say which key wraps them without revealing it. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('bulwark-key-id:').update(key).digest('hex').slice(0, 16);
}
