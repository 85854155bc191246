import 'reflect-metadata';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * Device keys made on this machine: an ECDSA P-256 key pair from node:crypto and a PKCS#10
 * request signed with it. Only the request ever leaves the process; the private key goes
 * to a 0600 file. Loaded lazily: @peculiar/x509 takes a moment to import.
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const subtle = webcrypto.subtle as unknown as SubtleCrypto;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface KeyAndCsr {
  /** PKCS#8 PEM: what OpenSSL, mosquitto and Node's tls module read. */
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function makeKeyAndCsr(deviceId: string): Promise<KeyAndCsr> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = {
    privateKey: await subtle.importKey('pkcs8', new Uint8Array(pair.privateKey.export({ type: 'pkcs8', format: 'der' })), EC_P256, false, ['sign']),
    publicKey: await subtle.importKey('spki', new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' })), EC_P256, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${deviceId}`,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  return { keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: csr.toString('pem') };
}

/** Why a CSR would be refused by the server (not PKCS#10, not P-256, bad signature), or undefined. */
export async function csrProblem(pem: string): Promise<string | undefined> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    return 'not a PEM PKCS#10 certificate request';
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') return `the key must be ECDSA P-256 (got ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''})`;
  return (await csr.verify()) ? undefined : 'its signature does not verify';
}
