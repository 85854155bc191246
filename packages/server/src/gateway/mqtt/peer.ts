import type { TLSSocket } from 'node:tls';
import { DEVICE_URN_PREFIX, type PeerCertificate } from '../../identity/index.js';

/**
 * The device identity of a verified TLS peer: the SAN URI `urn:bulwark:device:{id}`, else
 * the CN. Never the MQTT client id or username.
 */
export function peerOf(socket: TLSSocket): PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return undefined;
  const uri = (cert.subjectaltname ?? '').split(', ').find((n) => n.startsWith(`URI:${DEVICE_URN_PREFIX}`));
  const cn = cert.subject?.CN;
  const deviceId = uri ? uri.slice(`URI:${DEVICE_URN_PREFIX}`.length) : Array.isArray(cn) ? undefined : cn;
  if (!deviceId) return undefined;
  return { deviceId, fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(), serial: cert.serialNumber.toLowerCase() };
}
