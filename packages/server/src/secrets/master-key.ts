import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '@bulwark/core';
import { PlatformError } from '@bulwark/core';
import { type Aead, keyFingerprint, openWith, sealWith, softwareAead } from './envelope.js';
import type { HsmToken, TokenAesKey } from './hsm-token.js';

/**
 * A master key as the vault uses it: it wraps and unwraps data keys, and has a public id
 * (a fingerprint) that stored data keys name. Its bytes are in this process (a key file, the
 * environment) or never leave a PKCS#11 token.
 */
export interface MasterKey {
  readonly id: string;
  /** Where it is held. */
  readonly held: 'memory' | 'token';
  wrap(dataKey: Buffer, aad: string): string;
  unwrap(wrapped: string, aad: string): Buffer;
}

export function memoryMasterKey(key: Buffer): MasterKey {
  return aeadMasterKey(keyFingerprint(key), 'memory', softwareAead(key));
}

function aeadMasterKey(id: string, held: MasterKey['held'], aead: Aead): MasterKey {
  return { id, held, wrap: (k, aad) => sealWith(aead, k, aad), unwrap: (w, aad) => openWith(aead, w, aad) };
}

/**
 * A token key's public id. The key's bytes cannot be read, so the id is a fingerprint of
 * what it makes of a fixed input (a key check value): the same key in two tokens (an HSM
 * cluster, a restored backup) has the same id, and the value itself is never shown.
 */
function tokenKeyId(key: TokenAesKey): string {
  const { body, tag } = key.encrypt(Buffer.alloc(32), Buffer.alloc(12), Buffer.from('bulwark-key-id'));
  return createHash('sha256').update('bulwark-key-id:token:').update(body).update(tag).digest('hex').slice(0, 16);
}

export function tokenMasterKey(key: TokenAesKey): MasterKey & { readonly objectId: string } {
  return { ...aeadMasterKey(tokenKeyId(key), 'token', key), objectId: key.objectId };
}

/**
 * The master key kept in a token under `label`, for a store whose data keys name `named`
 * (empty: a new store). Made in the token on the first start. After a rotation the token also
 * holds the earlier keys (for backups taken before it): the one the store names is used, and
 * the others are reported, never destroyed here.
 */
export function openTokenMasterKey(token: HsmToken, label: string, named: ReadonlySet<string>, log: Logger): { key: MasterKey & { readonly objectId: string }; created: boolean } {
  const held = token.aesKeys(label).map(tokenMasterKey);
  if (held.length === 0) {
    if (named.size > 0) {
      throw new PlatformError(
        'BULWARK_ERR_MASTER_KEY_INVALID',
        `token "${token.label}" holds no key labelled ${label}, and the store's data keys are wrapped by master key ${[...named].join(', ')}: is this the right token (hsm.tokenLabel) and label (hsm.labelPrefix)?`,
      );
    }
    const key = tokenMasterKey(token.generateAesKey(label, newObjectId()));
    log.info({ token: token.label, label, masterKeyId: key.id }, 'created the master key inside the PKCS#11 token');
    return { key, created: true };
  }
  const current = held.find((k) => named.has(k.id)) ?? (named.size === 0 ? held.at(-1) : undefined);
  if (!current) {
    throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `the master key does not match the store: data keys are wrapped by ${[...named].join(', ')}, token "${token.label}" holds ${held.map((k) => k.id).join(', ')} under ${label}`);
  }
  const others = held.filter((k) => k !== current);
  if (others.length > 0) {
    log.info({ token: token.label, label, masterKeyId: current.id, earlier: others.map((k) => k.id) }, "the token also holds earlier master keys, which open backups taken before a rotation; delete them with the token's tools once no backup needs them");
  }
  return { key: current, created: false };
}

/** A new master key in the token, for a rotation. */
export function newTokenMasterKey(token: HsmToken, label: string): MasterKey & { readonly objectId: string } {
  return tokenMasterKey(token.generateAesKey(label, newObjectId()));
}

/** CKA_ID of a new key: its creation time then random bytes, so ids sort oldest first and never collide. */
function newObjectId(): string {
  return Date.now().toString(16).padStart(12, '0') + randomBytes(4).toString('hex');
}
