import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** The one place that loads @peculiar/x509 (it needs reflect-metadata first and a WebCrypto provider). */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGN_P256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A P-256 key made here (never leaves the device) and its CSR. */
export async function newKeyAndCsr(subject: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${subject}`, keys, signingAlgorithm: SIGN_P256 });
  const der = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
  return { keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY'), csrPem: csr.toString('pem') };
}
