import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Seals export cursors when exports are pseudonymised: a plain cursor carries the device id
 * it resumes after, which would hand the real id to whoever receives the export. Sealed with
 * AES-256-GCM under a key derived from the pseudonym key, it stays opaque and unforgeable,
 * and only this platform opens it to resume.
 */
export class CursorSeal {
  readonly #key: Buffer;

  constructor(pseudonymKey: Buffer) {
    this.#key = Buffer.from(hkdfSync('sha256', pseudonymKey, Buffer.alloc(0), 'bulwark export cursor', 32));
  }

  seal(cursor: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(cursor, 'utf8'), cipher.final()]);
    return `${SEALED}${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  /** The cursor inside a sealed one; undefined when it is not one this platform sealed. */
  open(text: string): string | undefined {
    if (!text.startsWith(SEALED) || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
    const raw = Buffer.from(text.slice(SEALED.length), 'base64url');
    if (raw.length < 12 + 16 + 1) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/** Sealed cursors start with this; a plain one (base64url of a JSON array) starts with "Wz". */
const SEALED = 's_';
