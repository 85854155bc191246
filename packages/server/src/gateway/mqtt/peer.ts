import type { TLSSocket } from 'node:tls';
import { DEVICE_URN_PREFIX, type PeerCertificate } from '../../identity/index.js';

/**
 * The device identity of a verified TLS peer: the SAN URI `urn:bulwark:device:{id}`, else
 * the CN. Never the MQTT client id or username.
 */
export function peerOf(socket: TLSSocket): PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate(true);
  if (!cert || !cert.fingerprint256) return undefined;
  const uri = (cert.subjectaltname ?? '').split(', ').find((n) => n.startsWith(`URI:${DEVICE_URN_PREFIX}`));
  const cn = cert.subject?.CN;
  const deviceId = uri ? uri.slice(`URI:${DEVICE_URN_PREFIX}`.length) : Array.isArray(cn) ? undefined : cn;
  if (!deviceId) return undefined;
  const hex = (fp: string) => fp.replace(/:/g, '').toLowerCase();
  const issuer = cert.issuerCertificate;
  return {
    deviceId,
    fingerprint: hex(cert.fingerprint256),
    serial: cert.serialNumber.toLowerCase(),
    ...(issuer?.fingerprint256 && issuer !== cert ? { issuerFingerprint: hex(issuer.fingerprint256) } : {}),
    der: cert.raw,
    notBefore: Date.parse(cert.valid_from),
    notAfter: Date.parse(cert.valid_to),
  };
}
