import { isIP } from 'node:net';
import { PlatformError } from '@bulwark/core';
import { deviceIdProblem } from '@bulwark/protocol';
import { EC_P256, SIGN_P256, generateP256, randomSerial, x509 } from './x509.js';

/**
 * Certificate and CRL construction for the device CA: pure functions over keys and
 * times, no storage. ECDSA P-256 with SHA-256 throughout.
 */
const DAY_MS = 86_400_000;
export const DEVICE_URN_PREFIX = 'urn:bulwark:device:';

export interface CaKeyPair {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
}

const caExtensions = async (publicKey: CryptoKey, pathLength: number | undefined, issuer?: x509.X509Certificate) => [
  new x509.BasicConstraintsExtension(true, pathLength, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
  await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer)] : []),
];

/** Makes the key pair of a new CA (in memory, or inside a token). */
export type CaKeyMaker = () => Promise<CryptoKeyPair>;

/** A new root and an issuing intermediate signed by it. */
export async function createCaPair(nowMs: number, name: string, keys: { root: CaKeyMaker; issuing: CaKeyMaker } = { root: generateP256, issuing: generateP256 }): Promise<{ root: CaKeyPair; issuing: CaKeyPair }> {
  const rootKeys = await keys.root();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name} Root CA, O=Bulwark`,
    notBefore: new Date(nowMs - 60_000),
    notAfter: new Date(nowMs + 20 * 365 * DAY_MS),
    keys: rootKeys,
    signingAlgorithm: SIGN_P256,
    extensions: await caExtensions(rootKeys.publicKey, 1),
  });
  const rootPair = { cert: root, privateKey: rootKeys.privateKey };
  return { root: rootPair, issuing: await createIssuingCa(rootPair, nowMs, `CN=${name} Issuing CA, O=Bulwark`, keys.issuing) };
}

/**
 * An issuing intermediate under `root`: ten years, never past the root. Each one needs a
 * subject of its own, so that a verifier (or a CRL lookup, which goes by issuer name) never
 * has two CAs of one name to choose from.
 */
export async function createIssuingCa(root: CaKeyPair, nowMs: number, subject: string, makeKeys: CaKeyMaker = generateP256): Promise<CaKeyPair> {
  const keys = await makeKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: root.cert.subject,
    notBefore: new Date(nowMs - 60_000),
    notAfter: new Date(Math.min(nowMs + 10 * 365 * DAY_MS, root.cert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: root.privateKey,
    signingAlgorithm: SIGN_P256,
    extensions: await caExtensions(keys.publicKey, 0, root.cert),
  });
  return { cert, privateKey: keys.privateKey };
}

/**
 * Reads a PEM CSR: its signature must verify (proof that the caller holds the private key)
 * and its key must be ECDSA P-256. Only the public key is used; the subject is ours to set.
 */
export async function publicKeyFromCsr(pem: string): Promise<CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_CSR_INVALID', 'the CSR is not a PEM or DER PKCS#10 certificate request', { cause });
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw new PlatformError('BULWARK_ERR_CSR_INVALID', `the CSR key must be ECDSA P-256 (got ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''})`);
  }
  if (!(await csr.verify())) throw new PlatformError('BULWARK_ERR_CSR_INVALID', 'the CSR signature does not verify');
  return csr.publicKey.export(EC_P256, ['verify']);
}

export interface DeviceCertRequest {
  readonly deviceId: string;
  readonly publicKey: CryptoKey;
  readonly nowMs: number;
  readonly validityDays: number;
}

interface LeafRequest {
  readonly subject: string;
  readonly publicKey: CryptoKey;
  readonly nowMs: number;
  readonly validityDays: number;
  readonly usage: x509.ExtendedKeyUsage;
  readonly names: x509.JsonGeneralNames;
}

/** An end-entity certificate from `ca`: not a CA, signature use only, never valid past its issuer. */
async function issueLeaf(ca: CaKeyPair, req: LeafRequest): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: req.subject,
    issuer: ca.cert.subject,
    notBefore: new Date(req.nowMs - 60_000),
    notAfter: new Date(Math.min(req.nowMs + req.validityDays * DAY_MS, ca.cert.notAfter.getTime())),
    publicKey: req.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGN_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([req.usage]),
      new x509.SubjectAlternativeNameExtension(req.names),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
}

/** A device client certificate: CN and SAN URI name the device, clientAuth only. */
export async function issueDeviceCertificate(ca: CaKeyPair, req: DeviceCertRequest): Promise<x509.X509Certificate> {
  const problem = deviceIdProblem(req.deviceId);
  if (problem) throw new PlatformError('BULWARK_ERR_DEVICE_ID_INVALID', `"${req.deviceId}" cannot be a device id (${problem.replace(/_/g, ' ')})`);
  return issueLeaf(ca, {
    subject: `CN=${req.deviceId}`,
    publicKey: req.publicKey,
    nowMs: req.nowMs,
    validityDays: req.validityDays,
    usage: x509.ExtendedKeyUsage.clientAuth,
    names: [{ type: 'url', value: `${DEVICE_URN_PREFIX}${req.deviceId}` }],
  });
}

/** The TLS server certificate of the device gateway, naming localhost and 127.0.0.1 besides the configured hosts. */
export async function issueServerCertificate(ca: CaKeyPair, hosts: readonly string[], nowMs: number, org = 'Bulwark gateway'): Promise<{ cert: x509.X509Certificate; privateKey: CryptoKey }> {
  const keys = await generateP256();
  const isAddress = (h: string) => isIP(h) !== 0;
  const names = new Set(['localhost', ...hosts]);
  const ips = new Set(['127.0.0.1', '::1', ...[...names].filter(isAddress)]);
  const cert = await issueLeaf(ca, {
    subject: `CN=localhost, O=${org}`,
    publicKey: keys.publicKey,
    nowMs,
    validityDays: 365,
    usage: x509.ExtendedKeyUsage.serverAuth,
    names: [...[...names].filter((h) => !isAddress(h)).map((value) => ({ type: 'dns' as const, value })), ...[...ips].map((value) => ({ type: 'ip' as const, value }))],
  });
  return { cert, privateKey: keys.privateKey };
}

export interface RevokedEntry {
  readonly serial: string;
  readonly revokedAtMs: number;
  readonly reason: x509.X509CrlReason;
}

/** DER of a non-negative INTEGER, for the CRL-number extension (the library has no class for it). */
function derInteger(n: number): ArrayBuffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Uint8Array.from([0x02, bytes.length, ...bytes]).buffer;
}

export async function buildCrl(ca: CaKeyPair, entries: readonly RevokedEntry[], crlNumber: number, nowMs: number, nextUpdateMs: number): Promise<x509.X509Crl> {
  return x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(nowMs),
    nextUpdate: new Date(nextUpdateMs),
    signingKey: ca.privateKey,
    signingAlgorithm: SIGN_P256,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert), new x509.Extension('2.5.29.20', false, derInteger(crlNumber))],
    entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: new Date(e.revokedAtMs), reason: e.reason })),
  });
}

/** CRLs must be PEM-armoured as `X509 CRL` for OpenSSL and Node to read them. */
export function crlPem(crl: x509.X509Crl): string {
  return `${x509.PemConverter.encode(crl.rawData, 'X509 CRL')}\n`;
}

/** The device id a certificate names: the SAN URI `urn:bulwark:device:{id}`, else the CN. */
export function deviceIdOf(cert: x509.X509Certificate): string | undefined {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const urn = san?.names.items.find((n) => n.type === 'url' && n.value.startsWith(DEVICE_URN_PREFIX));
  if (urn) return urn.value.slice(DEVICE_URN_PREFIX.length);
  return cert.subjectName.getField('CN')[0];
}
