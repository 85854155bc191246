import type { CaKind, CaRecord, ClaimToken, DeviceCertificate, IdentityRepository, ProvisioningRule } from '../../identity/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';

interface CaRow {
  id: string;
  kind: string;
  name: string;
  cert_pem: string;
  fingerprint: string;
  provisioning: string | null;
  crl_pem: string | null;
  created_at: number;
  disabled_at: number | null;
}
interface CertRow {
  serial: string;
  device_id: string;
  ca_id: string;
  fingerprint: string;
  not_before: number;
  not_after: number;
  pem: string;
  created_at: number;
  first_used_at: number | null;
  superseded_at: number | null;
  revoked_at: number | null;
  revocation_reason: string | null;
}
interface TokenRow {
  id: string;
  secret_hash: string;
  device_id: string;
  batch_id: string | null;
  expires_at: number;
  used_at: number | null;
  created_at: number;
  created_by: string;
}

const toCert = (r: CertRow): DeviceCertificate => ({
  serial: r.serial,
  deviceId: r.device_id,
  caId: r.ca_id,
  fingerprint: r.fingerprint,
  notBefore: Number(r.not_before),
  notAfter: Number(r.not_after),
  pem: r.pem,
  createdAt: Number(r.created_at),
  firstUsedAt: num(r.first_used_at),
  supersededAt: num(r.superseded_at),
  revokedAt: num(r.revoked_at),
  revocationReason: r.revocation_reason,
});

export class SqlIdentityRepository implements IdentityRepository {
  constructor(private readonly db: SqlClient) {}

  async insertCa(ca: CaRecord): Promise<void> {
    await this.db.run('INSERT INTO pki_cas (id, kind, name, cert_pem, fingerprint, provisioning, crl_pem, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      ca.id,
      ca.kind,
      ca.name,
      ca.certPem,
      ca.fingerprint,
      ca.provisioning === null ? null : toJson(ca.provisioning),
      ca.crlPem,
      ca.createdAt,
      ca.disabledAt,
    ]);
  }

  async listCas(): Promise<CaRecord[]> {
    const rows = await this.db.all<CaRow>('SELECT * FROM pki_cas ORDER BY created_at, id');
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind as CaKind,
      name: r.name,
      certPem: r.cert_pem,
      fingerprint: r.fingerprint,
      provisioning: fromJson<ProvisioningRule>(r.provisioning),
      crlPem: r.crl_pem,
      createdAt: Number(r.created_at),
      disabledAt: num(r.disabled_at),
    }));
  }

  async updateCaCrl(id: string, crlPem: string): Promise<boolean> {
    return (await this.db.run('UPDATE pki_cas SET crl_pem = $2 WHERE id = $1', [id, crlPem])) === 1;
  }

  async setCaDisabled(id: string, at: number | null): Promise<boolean> {
    return (await this.db.run("UPDATE pki_cas SET disabled_at = $2 WHERE id = $1 AND kind = 'manufacturer'", [id, at])) === 1;
  }

  async retireIssuingCa(id: string, at: number): Promise<boolean> {
    return (await this.db.run("UPDATE pki_cas SET disabled_at = $2 WHERE id = $1 AND kind = 'issuing' AND disabled_at IS NULL", [id, at])) === 1;
  }

  async insertCertificate(c: DeviceCertificate): Promise<void> {
    await this.db.run(
      `INSERT INTO device_certificates (serial, device_id, ca_id, fingerprint, not_before, not_after, pem, created_at, first_used_at, superseded_at, revoked_at, revocation_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [c.serial, c.deviceId, c.caId, c.fingerprint, c.notBefore, c.notAfter, c.pem, c.createdAt, c.firstUsedAt, c.supersededAt, c.revokedAt, c.revocationReason],
    );
  }

  async getCertificate(serial: string): Promise<DeviceCertificate | undefined> {
    const r = await this.db.get<CertRow>('SELECT * FROM device_certificates WHERE serial = $1', [serial]);
    return r && toCert(r);
  }

  async getCertificateByFingerprint(fingerprint: string): Promise<DeviceCertificate | undefined> {
    const r = await this.db.get<CertRow>('SELECT * FROM device_certificates WHERE fingerprint = $1', [fingerprint]);
    return r && toCert(r);
  }

  async listCertificates(deviceId: string): Promise<DeviceCertificate[]> {
    return (await this.db.all<CertRow>('SELECT * FROM device_certificates WHERE device_id = $1 ORDER BY created_at, serial', [deviceId])).map(toCert);
  }

  async listRevoked(caId: string, validAt: number): Promise<DeviceCertificate[]> {
    return (await this.db.all<CertRow>('SELECT * FROM device_certificates WHERE ca_id = $1 AND revoked_at IS NOT NULL AND not_after > $2 ORDER BY revoked_at, serial', [caId, validAt])).map(toCert);
  }

  async listExpiring(before: number, limit: number): Promise<DeviceCertificate[]> {
    return (
      await this.db.all<CertRow>(
        `SELECT c.* FROM device_certificates c JOIN devices d ON d.id = c.device_id
        WHERE c.revoked_at IS NULL AND c.superseded_at IS NULL AND c.not_after <= $1 AND d.state <> 'decommissioned'
          AND NOT EXISTS (SELECT 1 FROM device_certificates n WHERE n.device_id = c.device_id AND n.revoked_at IS NULL AND n.superseded_at IS NULL AND n.not_after > $1)
        ORDER BY c.not_after, c.serial LIMIT $2`,
        [before, limit],
      )
    ).map(toCert);
  }

  async listCertificatesByCa(caId: string): Promise<DeviceCertificate[]> {
    return (await this.db.all<CertRow>('SELECT * FROM device_certificates WHERE ca_id = $1 ORDER BY created_at, serial', [caId])).map(toCert);
  }

  async countLiveCertificates(caId: string, at: number, supersededSince: number): Promise<number> {
    const row = await this.db.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM device_certificates WHERE ca_id = $1 AND revoked_at IS NULL AND not_after > $2 AND (superseded_at IS NULL OR superseded_at >= $3)', [caId, at, supersededSince]);
    return Number(row?.n ?? 0);
  }

  async markUsed(serial: string, at: number): Promise<boolean> {
    return (await this.db.run('UPDATE device_certificates SET first_used_at = $2 WHERE serial = $1 AND first_used_at IS NULL', [serial, at])) === 1;
  }

  async supersedeOthers(deviceId: string, keepSerial: string, at: number): Promise<number> {
    return this.db.run('UPDATE device_certificates SET superseded_at = $3 WHERE device_id = $1 AND serial <> $2 AND superseded_at IS NULL AND revoked_at IS NULL', [deviceId, keepSerial, at]);
  }

  async revoke(serial: string, at: number, reason: string): Promise<boolean> {
    return (await this.db.run('UPDATE device_certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial = $1 AND revoked_at IS NULL', [serial, at, reason])) === 1;
  }

  async insertClaimTokens(tokens: readonly ClaimToken[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const t of tokens) {
        await tx.run('INSERT INTO claim_tokens (id, secret_hash, device_id, batch_id, expires_at, used_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          t.id,
          t.secretHash,
          t.deviceId,
          t.batchId,
          t.expiresAt,
          t.usedAt,
          t.createdAt,
          t.createdBy,
        ]);
      }
    });
  }

  async getClaimToken(id: string): Promise<ClaimToken | undefined> {
    const r = await this.db.get<TokenRow>('SELECT * FROM claim_tokens WHERE id = $1', [id]);
    return (
      r && {
        id: r.id,
        secretHash: r.secret_hash,
        deviceId: r.device_id,
        batchId: r.batch_id,
        expiresAt: Number(r.expires_at),
        usedAt: num(r.used_at),
        createdAt: Number(r.created_at),
        createdBy: r.created_by,
      }
    );
  }

  async useClaimToken(id: string, at: number): Promise<boolean> {
    return (await this.db.run('UPDATE claim_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2', [id, at])) === 1;
  }

  async nextCrlNumber(caId: string, at: number): Promise<number> {
    const row = await this.db.get<{ crl_number: number }>(
      `INSERT INTO crl_state (ca_id, crl_number, updated_at) VALUES ($1, 1, $2)
       ON CONFLICT (ca_id) DO UPDATE SET crl_number = crl_state.crl_number + 1, updated_at = excluded.updated_at
       RETURNING crl_number`,
      [caId, at],
    );
    return Number(row?.crl_number ?? 1);
  }

  async saveCrl(caId: string, crlNumber: number, crlPem: string): Promise<boolean> {
    return (await this.db.run('UPDATE pki_cas SET crl_pem = $3 WHERE id = $1 AND (SELECT crl_number FROM crl_state WHERE ca_id = $1) = $2', [caId, crlNumber, crlPem])) === 1;
  }
}
