import { createHash } from 'node:crypto';
import { PlatformError } from '@bulwark/core';
import type graphene from 'graphene-pk11';

/**
 * A PKCS#11 token (an HSM, SoftHSM in the tests) that holds the platform's most valuable keys:
 * the device CA's signing keys and the master key. Keys are generated inside the token as
 * sensitive and not extractable; the platform only asks the token to sign (ECDSA) or to
 * encrypt and decrypt (AES-GCM) with them, so a copy of the database and the data directory
 * does not yield them.
 *
 * graphene-pk11 (a native module) is loaded only when a token is configured: a platform
 * without one never loads it.
 */
export interface HsmSettings {
  /** Path of the PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`). */
  readonly library: string;
  readonly tokenLabel: string;
  readonly pin: string;
}

/** An ECDSA P-256 key in the token. */
export interface TokenEcKey {
  readonly label: string;
  /** DER SubjectPublicKeyInfo of the public half. */
  readonly spki: Buffer;
  /** Whether the token would let the private key out (it must not). */
  readonly extractable: boolean;
  /** ECDSA over a SHA-256 digest made here (SoftHSM 2.6 has no CKM_ECDSA_SHA256), raw r||s. */
  signDigest(digest: Buffer): Buffer;
}

/** An AES-256 key in the token. */
export interface TokenAesKey {
  readonly label: string;
  /** The token's CKA_ID of the key (hex): tells two keys of one label apart. */
  readonly objectId: string;
  readonly extractable: boolean;
  /** AES-GCM in the token: ciphertext and the 16-byte tag. */
  encrypt(plaintext: Buffer, nonce: Buffer, aad: Buffer): { body: Buffer; tag: Buffer };
  decrypt(body: Buffer, tag: Buffer, nonce: Buffer, aad: Buffer): Buffer;
}

type Graphene = typeof graphene;
/** SubjectPublicKeyInfo header of an uncompressed P-256 point (id-ecPublicKey, prime256v1). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const TAG_BYTES = 16;

export class HsmToken {
  #closed = false;

  private constructor(
    private readonly g: Graphene,
    private readonly module: graphene.Module,
    private readonly session: graphene.Session,
    readonly label: string,
  ) {}

  /** Opens a session on the token labelled `tokenLabel` and logs in as its user. */
  static async open(s: HsmSettings): Promise<HsmToken> {
    let g: Graphene;
    try {
      const loaded = await import('graphene-pk11');
      g = loaded.default ?? loaded;
    } catch (cause) {
      throw new PlatformError('BULWARK_ERR_HSM_UNAVAILABLE', 'the PKCS#11 support (graphene-pk11) could not be loaded', { cause });
    }
    let module: graphene.Module;
    try {
      module = g.Module.load(s.library, 'bulwark');
      module.initialize();
    } catch (cause) {
      throw new PlatformError('BULWARK_ERR_HSM_UNAVAILABLE', `the PKCS#11 module ${s.library} could not be loaded: ${(cause as Error).message}`, { cause });
    }
    try {
      const slot = [...module.getSlots(true)].find((x) => x.getToken().label.trim() === s.tokenLabel);
      if (!slot) throw new PlatformError('BULWARK_ERR_HSM_UNAVAILABLE', `the PKCS#11 module ${s.library} has no token labelled "${s.tokenLabel}"`);
      const session = slot.open(g.SessionFlag.SERIAL_SESSION | g.SessionFlag.RW_SESSION);
      try {
        session.login(s.pin, g.UserType.USER);
      } catch (cause) {
        session.close();
        throw new PlatformError('BULWARK_ERR_HSM_UNAVAILABLE', `logging in to token "${s.tokenLabel}" failed (${(cause as Error).message}); check hsm.pin (BULWARK_HSM_PIN)`, { cause });
      }
      return new HsmToken(g, module, session, s.tokenLabel);
    } catch (err) {
      module.finalize();
      throw err;
    }
  }

  /** The EC key labelled `label`, or undefined. Refuses one that is or ever was readable outside the token. */
  findEcKey(label: string): TokenEcKey | undefined {
    const priv = this.#find(this.g.ObjectClass.PRIVATE_KEY, label)[0];
    const pub = this.#find(this.g.ObjectClass.PUBLIC_KEY, label)[0];
    if (!priv || !pub) return undefined;
    this.#requireHeld(priv, label);
    return this.#ecKey(label, priv.toType<graphene.Key>(), pub);
  }

  /** A new P-256 pair made inside the token: the private half sensitive and not extractable. */
  generateEcKey(label: string): TokenEcKey {
    if (this.findEcKey(label)) throw new PlatformError('BULWARK_ERR_CONFLICT', `token "${this.label}" already holds a key labelled ${label}`);
    const { KeyType } = this.g;
    const pair = this.session.generateKeyPair(
      this.g.KeyGenMechanism.EC,
      { keyType: KeyType.EC, label, token: true, verify: true, paramsEC: P256_OID },
      { keyType: KeyType.EC, label, token: true, sign: true, private: true, sensitive: true, extractable: false },
    );
    return this.#ecKey(label, pair.privateKey, pair.publicKey);
  }

  /** Every AES key labelled `label`, oldest CKA_ID first. Refuses one that is or ever was readable outside the token. */
  aesKeys(label: string): TokenAesKey[] {
    return this.#find(this.g.ObjectClass.SECRET_KEY, label)
      .map((o) => this.#aesKey(label, this.#requireHeld(o, label).toType<graphene.SecretKey>()))
      .sort((a, b) => a.objectId.localeCompare(b.objectId));
  }

  /** A new AES-256 key made inside the token, sensitive and not extractable; `objectId` tells it apart from others of its label. */
  generateAesKey(label: string, objectId: string): TokenAesKey {
    const key = this.session.generateKey(this.g.KeyGenMechanism.AES, {
      class: this.g.ObjectClass.SECRET_KEY,
      keyType: this.g.KeyType.AES,
      label,
      id: Buffer.from(objectId, 'hex'),
      valueLen: 32,
      token: true,
      private: true,
      sensitive: true,
      extractable: false,
      encrypt: true,
      decrypt: true,
    });
    return this.#aesKey(label, key);
  }

  /** Destroys the AES key of `label` with `objectId` (after a master-key rotation). */
  destroyAesKey(label: string, objectId: string): void {
    for (const o of this.#find(this.g.ObjectClass.SECRET_KEY, label)) {
      if (Buffer.from(o.getAttribute({ id: null }).id ?? []).toString('hex') === objectId) o.destroy();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.session.logout();
      this.session.close();
    } finally {
      this.module.finalize();
    }
  }

  /**
   * A key found by its label may have been put there by hand (imported, unwrapped, made with
   * another tool): it is used only when the token says it cannot leave and never could.
   */
  #requireHeld(o: graphene.SessionObject, label: string): graphene.SessionObject {
    const a = o.getAttribute({ sensitive: null, extractable: null, neverExtractable: null });
    if (a.sensitive !== true || a.extractable !== false || a.neverExtractable !== true) {
      throw new PlatformError(
        'BULWARK_ERR_HSM_UNAVAILABLE',
        `token "${this.label}" holds ${label}, but the key can leave the token or once could (sensitive ${String(a.sensitive)}, extractable ${String(a.extractable)}, never extractable ${String(a.neverExtractable)}): refused; remove it, or give another hsm.labelPrefix`,
      );
    }
    return o;
  }

  #find(cls: graphene.ObjectClass, label: string): graphene.SessionObject[] {
    return [...this.session.find({ class: cls, label })];
  }

  #ecKey(label: string, priv: graphene.Key, pub: graphene.SessionObject): TokenEcKey {
    const point = pub.getAttribute({ pointEC: null }).pointEC as Buffer;
    // CKA_EC_POINT is a DER OCTET STRING around the 65-byte uncompressed point.
    const raw = point.length === 67 && point[0] === 0x04 ? point.subarray(2) : point;
    if (raw.length !== 65 || raw[0] !== 0x04) throw new PlatformError('BULWARK_ERR_HSM_UNAVAILABLE', `token key ${label} is not an uncompressed P-256 point`);
    const session = this.session;
    return {
      label,
      spki: Buffer.concat([P256_SPKI_PREFIX, raw]),
      extractable: priv.getAttribute({ extractable: null }).extractable === true,
      signDigest: (digest) => session.createSign('ECDSA', priv).once(digest),
    };
  }

  #aesKey(label: string, key: graphene.SecretKey): TokenAesKey {
    const g = this.g;
    const session = this.session;
    const params = (nonce: Buffer, aad: Buffer) => ({ name: 'AES_GCM', params: new g.AesGcm240Params(nonce, aad, TAG_BYTES * 8) });
    return {
      label,
      objectId: Buffer.from(key.getAttribute({ id: null }).id ?? []).toString('hex'),
      extractable: key.getAttribute({ extractable: null }).extractable === true,
      encrypt(plaintext, nonce, aad) {
        const out = session.createCipher(params(nonce, aad), key).once(plaintext, Buffer.alloc(plaintext.length + TAG_BYTES + 16));
        return { body: out.subarray(0, out.length - TAG_BYTES), tag: out.subarray(out.length - TAG_BYTES) };
      },
      decrypt(body, tag, nonce, aad) {
        return session.createDecipher(params(nonce, aad), key).once(Buffer.concat([body, tag]), Buffer.alloc(body.length + TAG_BYTES + 16));
      },
    };
  }
}

/** SHA-256 of data: what a token EC key signs. */
export const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();
