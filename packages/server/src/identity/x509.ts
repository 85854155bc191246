import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The one place that loads @peculiar/x509: it needs reflect-metadata first and a WebCrypto
 * provider. Everything else in identity imports `x509` and `subtle` from here.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGN_P256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateP256(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
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
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01;
  return Buffer.from(bytes).toString('hex');
}
