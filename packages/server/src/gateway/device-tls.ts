import { constants } from 'node:crypto';
import type { SecureContextOptions, TLSSocket, Server as TlsServer } from 'node:tls';
import type { Clock } from '@bulwark/core';
import { type IdentityService, exportPkcs8, fingerprintOf, issueServerCertificate, pkcs8Pem } from '../identity/index.js';

/** TLS 1.2 AEAD suites for an ECDSA server key, plus the TLS 1.3 suites (all AEAD). */
export const DEVICE_CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'].join(':');

/**
 * The TLS side every device listener shares (MQTT, HTTPS): a server certificate from the
 * active issuing CA, client certificates required and checked against the platform CAs (the
 * root and every trusted issuing CA, so that certificates from a previous one work during a
 * rollover), the registered manufacturer CAs and all their CRLs, TLS 1.2+ with AEAD suites only.
 */
export class DeviceTls {
  #keyAndCert: { key: string; cert: string; caId: string } | undefined;

  constructor(
    private readonly identity: IdentityService,
    private readonly hostnames: readonly string[],
    private readonly clock: Clock,
  ) {}

  /** Options for tls.createServer / https.createServer. */
  async serverOptions(): Promise<SecureContextOptions & { requestCert: true; rejectUnauthorized: true }> {
    // After a rollover the server certificate comes from the new CA too. Devices verify it up to
    // the root (their ca.crt holds it), with the intermediate sent here, so no device needs the new CA first.
    const active = this.identity.authority.active;
    if (this.#keyAndCert?.caId !== active.id) {
      const { cert, privateKey } = await issueServerCertificate(active.pair, this.hostnames, this.clock.now());
      this.#keyAndCert = { key: pkcs8Pem(await exportPkcs8(privateKey)), cert: `${cert.toString('pem')}\n${active.pair.cert.toString('pem')}\n`, caId: active.id };
    }
    const { key, cert } = this.#keyAndCert;
    // No session tickets: a resumed session skips certificate and CRL verification, so a
    // revoked certificate could come back on a ticket; each ticket-capable socket also holds
    // about 16 KiB more (bench/README.md). Devices keep long sessions; a full handshake on
    // reconnect is the price, and the right one.
    return {
      key,
      cert,
      ...this.#trust(),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ciphers: DEVICE_CIPHERS,
      honorCipherOrder: true,
      secureOptions: constants.SSL_OP_NO_TICKET,
    };
  }

  /** Applies the current trust anchors and CRLs to a running server: new handshakes see them at once. */
  async reload(server: TlsServer): Promise<void> {
    server.setSecureContext(await this.serverOptions());
  }

  /** Calls `fn` whenever the trust anchors or CRLs changed anywhere in the platform and were reloaded here. */
  onTrustChanged(fn: () => void | Promise<void>): () => void {
    return this.identity.onTrustChanged(fn);
  }

  /** Whether the issuer of a live session is still trusted (an issuing CA may have been retired, a manufacturer CA disabled). */
  trustsIssuer(issuerFingerprint: string | undefined): boolean {
    if (!issuerFingerprint) return true;
    const { authority, manufacturers } = this.identity;
    return [fingerprintOf(authority.root.cert), ...authority.trusted.map((c) => c.fingerprint), ...manufacturers.enabled.map((c) => c.fingerprint)].includes(issuerFingerprint);
  }

  #trust(): SecureContextOptions {
    const { authority, crlPem, manufacturers } = this.identity;
    const mfr = manufacturers.enabled;
    // Revocation is checked for every CA of a chain: an issuing CA goes in only with its CRL.
    const issuing = authority.trusted.flatMap((c) => {
      const crl = crlPem.byCa.get(c.id);
      return crl ? [{ cert: c.pair.cert.toString('pem'), crl }] : [];
    });
    return {
      ca: [authority.root.cert.toString('pem'), ...issuing.map((c) => c.cert), ...mfr.map((c) => c.certPem)],
      crl: [crlPem.root, ...issuing.map((c) => c.crl), ...mfr.flatMap((c) => (c.crlPem ? [c.crlPem] : []))],
    };
  }
}

/** A short, bounded label for why a handshake failed, from OpenSSL's verdict or the socket error. */
export function tlsRefusalReason(socket: TLSSocket, err: Error & { code?: string }): string {
  const verdict = (socket as TLSSocket & { authorizationError?: string }).authorizationError;
  const text = (verdict ?? `${err.code ?? ''} ${err.message}`).toLowerCase().replace(/_/g, ' ');
  if (text.includes('revoked')) return 'revoked';
  if (text.includes('expired')) return 'expired';
  if (text.includes('not yet valid')) return 'not_yet_valid';
  if (text.includes('peer did not return a certificate') || text.includes('no certificate') || text.includes('certificate required')) return 'no_certificate';
  if (text.includes('unknown ca') || text.includes('unable to get') || text.includes('unable to verify') || text.includes('self signed') || text.includes('self-signed')) return 'unknown_ca';
  if (text.includes('crl')) return 'crl_problem';
  if (text.includes('version') || text.includes('protocol')) return 'protocol_version';
  if (text.includes('cipher')) return 'no_shared_cipher';
  return 'other';
}
