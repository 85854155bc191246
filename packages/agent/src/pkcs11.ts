import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as graphene from 'graphene-pk11';
import { SIGN_P256, x509 } from './crypto.js';
import { type Identity, describeCert, enrollCsr, identityFiles, writeFileDurable } from './identity.js';

/**
 * A device key held in a PKCS#11 token (SoftHSM, a TPM's PKCS#11 module, a secure element):
 * generated inside the token, marked sensitive and not extractable, used only through the
 * token's sign operation. SoftHSM 2.6 has no CKM_ECDSA_SHA256, so the data is hashed here
 * and the token signs the digest with CKM_ECDSA.
 *
 * Limit: Node's TLS stack cannot use a key it cannot read (OpenSSL engines are not reachable
 * from Node 20 without a custom build), so a token-held identity enrolls and renews, but the
 * MQTT session itself needs a file key or a TLS-terminating helper. See docs/guides/agent.md.
 */

/**
 * graphene-pk11 is an optional peer dependency: loaded on first use so that the SDK runs
 * without it, and a clear error when a token key is asked for and it is not installed.
 */
let loaded: typeof graphene | undefined;
function loadGraphene(): typeof graphene {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('graphene-pk11') as typeof graphene;
    return loaded;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes("'graphene-pk11'");
    if (!missing) throw err;
    throw new Error('a PKCS#11 key needs the optional peer dependency graphene-pk11, which is not installed: run `npm install graphene-pk11@^2.3.6` beside @bulwark/agent', { cause: err });
  }
}

export interface Pkcs11Options {
  readonly library: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly keyLabel: string;
}

/** SubjectPublicKeyInfo header of an uncompressed P-256 point (id-ecPublicKey, prime256v1). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');

export class TokenKey {
  readonly #module: graphene.Module;
  readonly #session: graphene.Session;
  readonly #key: graphene.Key;
  /** DER SubjectPublicKeyInfo of the token's public key. */
  readonly spki: Buffer;

  private constructor(module: graphene.Module, session: graphene.Session, key: graphene.Key, spki: Buffer) {
    this.#module = module;
    this.#session = session;
    this.#key = key;
    this.spki = spki;
  }

  /** Opens the token and finds the key by label, generating a P-256 pair inside the token when there is none. */
  static open(o: Pkcs11Options): TokenKey {
    const pk = loadGraphene();
    const mod = pk.Module.load(o.library, 'pkcs11');
    mod.initialize();
    try {
      const slot = [...mod.getSlots(true)].find((s) => s.getToken().label.trim() === o.tokenLabel);
      if (!slot) throw new Error(`no PKCS#11 token labelled "${o.tokenLabel}"`);
      const session = slot.open(pk.SessionFlag.SERIAL_SESSION | pk.SessionFlag.RW_SESSION);
      session.login(o.pin, pk.UserType.USER);
      const find = (cls: graphene.ObjectClass) => [...session.find({ class: cls, label: o.keyLabel })][0];
      let priv = find(pk.ObjectClass.PRIVATE_KEY);
      let pub = find(pk.ObjectClass.PUBLIC_KEY);
      if (!priv || !pub) {
        const pair = session.generateKeyPair(
          pk.KeyGenMechanism.EC,
          { keyType: pk.KeyType.EC, label: o.keyLabel, token: true, verify: true, paramsEC: P256_OID },
          { keyType: pk.KeyType.EC, label: o.keyLabel, token: true, sign: true, private: true, sensitive: true, extractable: false },
        );
        priv = pair.privateKey;
        pub = pair.publicKey;
      }
      const point = pub.getAttribute({ pointEC: null }).pointEC as Buffer;
      // CKA_EC_POINT is a DER OCTET STRING around the 65-byte uncompressed point.
      const raw = point.length === 67 && point[0] === 0x04 ? point.subarray(2) : point;
      if (raw.length !== 65 || raw[0] !== 0x04) throw new Error('the token key is not an uncompressed P-256 point');
      return new TokenKey(mod, session, priv.toType<graphene.Key>(), Buffer.concat([P256_SPKI_PREFIX, raw]));
    } catch (err) {
      mod.finalize();
      throw err;
    }
  }

  /** Whether the token lets the private key out (it must not). */
  get extractable(): boolean {
    return this.#key.getAttribute({ extractable: null }).extractable === true;
  }

  /** ECDSA P-256 over SHA-256(data), raw r||s: hashed here, signed in the token. */
  sign(data: Uint8Array): Buffer {
    const digest = createHash('sha256').update(data).digest();
    return this.#session.createSign('ECDSA', this.#key).once(digest);
  }

  /** A CSR whose signature was made inside the token. */
  async csr(subject: string): Promise<string> {
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
    const privateKey = { algorithm, type: 'private', extractable: false, usages: ['sign'] } as unknown as CryptoKey;
    const publicKey = { algorithm, type: 'public', extractable: true, usages: ['verify'] } as unknown as CryptoKey;
    const tokenCrypto = {
      subtle: {
        exportKey: async () => new Uint8Array(this.spki).buffer,
        sign: async (_alg: unknown, _key: unknown, data: BufferSource) => new Uint8Array(this.sign(new Uint8Array(data as ArrayBuffer))).buffer,
      },
    } as unknown as Crypto;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${subject}`, keys: { privateKey, publicKey }, signingAlgorithm: SIGN_P256 }, tokenCrypto);
    return csr.toString('pem');
  }

  close(): void {
    try {
      this.#session.logout();
      this.#session.close();
    } finally {
      this.#module.finalize();
    }
  }
}

/** Enrolls a token-held key: CSR signed in the token, certificate and CA chain stored in `dir`. */
export async function enrollWithPkcs11(o: { dir: string; deviceId: string; enrollUrl: string; claimToken: string; pkcs11: Pkcs11Options }): Promise<Omit<Identity, 'keyPem'>> {
  const key = TokenKey.open(o.pkcs11);
  try {
    const issued = await enrollCsr(o.enrollUrl, o.claimToken, await key.csr(o.deviceId));
    const cert = describeCert(issued.certificate);
    if (!cert.publicKeyDer.equals(key.spki)) throw new Error('the issued certificate does not hold the token key');
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const f = identityFiles(o.dir);
    writeFileDurable(f.ca, issued.caChain);
    writeFileDurable(f.cert, issued.certificate);
    return { certPem: issued.certificate, caPem: issued.caChain, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter };
  } finally {
    key.close();
  }
}
