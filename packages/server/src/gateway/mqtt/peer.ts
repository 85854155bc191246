import type { TLSSocket } from 'node:tls';
import { DEVICE_URN_PREFIX, type PeerCertificate } from '../../identity/index.js';

/**
 * The device identity of a verified TLS peer: the SAN URI `urn:bulwark:device:{id}`, else
 * the CN. Never the MQTT client id or username.
 *
 * Reads the certificate through `getPeerX509Certificate`, whose fields are computed only
 * when asked: `getPeerCertificate(true)` builds the whole chain as objects with DER copies
 * and public keys, and cost about 1.6 ms of CPU per handshake (profiled in the connect storm).
 */
export function peerOf(socket: TLSSocket): PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerX509Certificate();
  if (!cert) return undefined;
  const uri = (cert.subjectAltName ?? '').split(', ').find((n) => n.startsWith(`URI:${DEVICE_URN_PREFIX}`));
  const deviceId = uri ? uri.slice(`URI:${DEVICE_URN_PREFIX}`.length) : commonName(cert.subject);
  if (!deviceId) return undefined;
  const fingerprint = hex(cert.fingerprint256);
  const peer: PeerCertificate = {
    deviceId,
    fingerprint,
    serial: cert.serialNumber.toLowerCase(),
    der: cert.raw,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
  // The issuer is needed only for certificates the platform does not know yet (just-in-time
  // provisioning) and when trust changes; Node often leaves it off the X509Certificate, so it is
  // read from the full chain then, once.
  let issuer: string | null | undefined;
  Object.defineProperty(peer, 'issuerFingerprint', {
    enumerable: true,
    get() {
      if (issuer === undefined) {
        const fp = cert.issuerCertificate?.fingerprint256 ?? socket.getPeerCertificate(true).issuerCertificate?.fingerprint256;
        issuer = fp && hex(fp) !== fingerprint ? hex(fp) : null;
      }
      return issuer ?? undefined;
    },
  });
  return peer;
}

const hex = (fp: string) => fp.replace(/:/g, '').toLowerCase();

/** The subject's one CN; none when there are several, or when the value needed escaping (no device id does). */
function commonName(subject: string): string | undefined {
  const cns = subject.split('\n').filter((line) => line.startsWith('CN='));
  if (cns.length !== 1) return undefined;
  const value = (cns[0] as string).slice(3);
  return /["\\]/.test(value) ? undefined : value;
}
