import { createHash } from 'node:crypto';
import type { Clock, Logger } from '@bulwark/core';
import type { SecretVault } from '../secrets/index.js';
import type { CaRecord, IdentityRepository } from './identity.js';
import { type CaKeyPair, createCaPair } from './pki.js';
import { exportPkcs8, importPkcs8, x509 } from './x509.js';

export const ROOT_CA_ID = 'root';
export const ISSUING_CA_ID = 'issuing';
const keySecret = (id: string) => `identity.ca.${id}.key`;

export function fingerprintOf(cert: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
}

export interface DeviceAuthority {
  readonly root: CaKeyPair;
  readonly issuing: CaKeyPair;
  /** Root then issuing, PEM: what a device or a stock client trusts. */
  readonly chainPem: string;
}

/**
 * Loads the device CA, or creates it on first start: certificates in the store, private
 * keys sealed in the secret vault (never on disk in the clear).
 */
export async function loadOrCreateAuthority(repo: IdentityRepository, vault: SecretVault, clock: Clock, log: Logger): Promise<DeviceAuthority> {
  const cas = await repo.listCas();
  let root = cas.find((c) => c.id === ROOT_CA_ID);
  let issuing = cas.find((c) => c.id === ISSUING_CA_ID);
  if (!root || !issuing) {
    const created = await createCaPair(clock.now(), 'Bulwark Device');
    const now = clock.now();
    const records: [string, 'root' | 'issuing', CaKeyPair][] = [[ROOT_CA_ID, 'root', created.root], [ISSUING_CA_ID, 'issuing', created.issuing]];
    for (const [id, kind, pair] of records) {
      await vault.put(keySecret(id), await exportPkcs8(pair.privateKey));
      const record: CaRecord = { id, kind, name: pair.cert.subject, certPem: pair.cert.toString('pem'), fingerprint: fingerprintOf(pair.cert), provisioning: null, crlPem: null, createdAt: now, disabledAt: null };
      await repo.insertCa(record);
    }
    log.info({ root: fingerprintOf(created.root.cert), issuing: fingerprintOf(created.issuing.cert) }, 'created the device certificate authority');
    root = (await repo.listCas()).find((c) => c.id === ROOT_CA_ID);
    issuing = (await repo.listCas()).find((c) => c.id === ISSUING_CA_ID);
  }
  if (!root || !issuing) throw new Error('the device CA could not be stored');
  const pair = async (record: CaRecord): Promise<CaKeyPair> => {
    const der = await vault.get(keySecret(record.id));
    if (!der) throw new Error(`the private key of CA ${record.id} is missing from the vault`);
    return { cert: new x509.X509Certificate(record.certPem), privateKey: await importPkcs8(der) };
  };
  const rootPair = await pair(root);
  const issuingPair = await pair(issuing);
  return { root: rootPair, issuing: issuingPair, chainPem: `${rootPair.cert.toString('pem')}\n${issuingPair.cert.toString('pem')}\n` };
}
