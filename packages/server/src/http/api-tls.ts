import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';
import type { ServerConfig } from '../config/index.js';
import { type DeviceAuthority, exportPkcs8, issueServerCertificate, pkcs8Pem } from '../identity/index.js';

/** What the HTTP API serves TLS with, and where a client finds what to trust. */
export interface ApiTls {
  readonly key: string;
  readonly cert: string;
  readonly hstsMaxAgeS: number;
  /** The platform's root CA, written for clients (`curl --cacert`); absent with the operator's own certificate. */
  readonly caFile?: string;
}

const WILDCARD = /^(0\.0\.0\.0|::|\[::\])$/;

/**
 * The HTTP API's key and certificate when `http.tls` is on: the operator's files, or a
 * certificate issued at start by the platform's active issuing CA for localhost, 127.0.0.1,
 * `http.host` (unless it is every interface) and `http.tlsNames`, sent with the issuing CA so a
 * client that trusts the root verifies it. The root goes to `<dataDir>/ca.pem` (public, the
 * same chain GET /api/v1/pki/ca.pem serves) for clients. A new certificate each start: the
 * key never leaves memory, and after a CA rollover the next start uses the new CA.
 */
export async function apiTls(http: ServerConfig['http'], authority: DeviceAuthority, dataDir: string, nowMs: number): Promise<ApiTls | undefined> {
  if (!http.tls) return undefined;
  if (http.tlsCertFile !== '') {
    const read = (path: string, what: string) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (err) {
        throw new PlatformError('BULWARK_ERR_VALIDATION', `http.${what}: cannot read ${path}: ${(err as Error).message}`);
      }
    };
    return { key: read(http.tlsKeyFile, 'tlsKeyFile'), cert: read(http.tlsCertFile, 'tlsCertFile'), hstsMaxAgeS: http.hstsMaxAgeS };
  }
  const names = [
    ...http.tlsNames
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean),
    ...(WILDCARD.test(http.host) ? [] : [http.host]),
  ];
  const issuing = authority.issuing;
  const { cert, privateKey } = await issueServerCertificate(issuing, names, nowMs, 'Bulwark API');
  const caFile = join(dataDir, 'ca.pem');
  writeFileSync(caFile, authority.chainPem, { mode: 0o644 });
  return { key: pkcs8Pem(await exportPkcs8(privateKey)), cert: `${cert.toString('pem')}\n${issuing.cert.toString('pem')}\n`, hstsMaxAgeS: http.hstsMaxAgeS, caFile };
}
