import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The one place that loads @peculiar/x509: it needs reflect-metadata first and a WebCrypto
 * provider. Everything else in identity imports `x509` and `subtle` from here.
 *
 * The provider is Node's WebCrypto, except that a signature with a key made by
 * `tokenPrivateKey` is made by that key's token (a CA key held in a PKCS#11 token): the
 * certificate and CRL generators then work unchanged for keys they can never read.
 */
const tokenSigners = new WeakMap<object, (data: Uint8Array) => Buffer>();

/** A private CryptoKey stand-in whose signatures (ECDSA P-256, SHA-256, raw r||s) `sign` makes. */
export function tokenPrivateKey(sign: (data: Uint8Array) => Buffer): CryptoKey {
  const key = Object.freeze({ algorithm: EC_P256, type: 'private', extractable: false, usages: ['sign'] });
  tokenSigners.set(key, sign);
  return key as unknown as CryptoKey;
}

/** Whether `key` is held in a token (its signatures are made there). */
export const isTokenKey = (key: CryptoKey): boolean => tokenSigners.has(key);

const nodeSubtle = webcrypto.subtle;
const subtleWithTokens = new Proxy(nodeSubtle, {
  get(target, prop) {
    if (prop === 'sign') {
      return async (alg: AlgorithmIdentifier, key: CryptoKey, data: BufferSource) => {
        const signer = tokenSigners.get(key);
        if (!signer) return target.sign(alg, key, data);
        const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
        return new Uint8Array(signer(bytes)).buffer;
      };
    }
    const value = Reflect.get(target, prop, target) as unknown;
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
  },
});
x509.cryptoProvider.set({ subtle: subtleWithTokens, getRandomValues: webcrypto.getRandomValues.bind(webcrypto), randomUUID: webcrypto.randomUUID.bind(webcrypto) } as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A P-256 public key from DER SubjectPublicKeyInfo. */
export function importSpki(der: Buffer): Promise<CryptoKey> {
  return subtle.importKey('spki', new Uint8Array(der), EC_P256, true, ['verify']);
}
export const SIGN_P256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateP256(): Promise<CryptoKeyPair> {
  return await subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

export async function exportPkcs8(key: CryptoKey): Promise<Buffer> {
  return Buffer.from(await subtle.exportKey('pkcs8', key));
}

export async function importPkcs8(der: Buffer): Promise<CryptoKey> {
  return subtle.importKey('pkcs8', new Uint8Array(der), EC_P256, true, ['sign']);
}

/** PEM text of a PKCS#8 private key, as OpenSSL and Node's tls module read it. */
export function pkcs8Pem(der: Buffer): string {
  return x509.PemConverter.encode(new Uint8Array(der), 'PRIVATE KEY');
}

/** A random positive 128-bit serial number, as hex. */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
