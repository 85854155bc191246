/** Stored identity material: CAs, device certificates and one-time claim tokens. */
export type CaKind = 'root' | 'issuing' | 'manufacturer';

/**
 * Which devices carrying a manufacturer CA's certificates are provisioned on first connect:
 * those in the allow list, or those whose id matches the pattern (anchored).
 */
export interface ProvisioningRule {
  readonly allowList?: readonly string[];
  readonly idPattern?: string;
  /** Inventory attributes given to devices provisioned through this rule. */
  readonly model?: string;
  readonly tags?: readonly string[];
}

export interface CaRecord {
  readonly id: string;
  readonly kind: CaKind;
  readonly name: string;
  readonly certPem: string;
  /** SHA-256 of the DER certificate, hex. */
  readonly fingerprint: string;
  /** Manufacturer CAs only: who is provisioned just in time. */
  readonly provisioning: ProvisioningRule | null;
  /** Manufacturer CAs only: the manufacturer's CRL, required because the gateway checks revocation on every CA. */
  readonly crlPem: string | null;
  readonly createdAt: number;
  /** Manufacturer CAs: when disabled; issuing CAs: when retired (no longer trusted). */
  readonly disabledAt: number | null;
}

export interface DeviceCertificate {
  /** Hex serial number, lower case. */
  readonly serial: string;
  readonly deviceId: string;
  readonly caId: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly pem: string;
  readonly createdAt: number;
  /** First time a session was made with this certificate. */
  readonly firstUsedAt: number | null;
  /** Set when a newer certificate replaced this one (rotation); it stays valid for the overlap window. */
  readonly supersededAt: number | null;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

export interface ClaimToken {
  readonly id: string;
  /** SHA-256 of the token secret (256 random bits, so a slow hash adds nothing). */
  readonly secretHash: string;
  readonly deviceId: string;
  readonly batchId: string | null;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface IdentityRepository {
  insertCa(ca: CaRecord): Promise<void>;
  listCas(): Promise<CaRecord[]>;
  updateCaCrl(id: string, crlPem: string): Promise<boolean>;
  /** Manufacturer CAs only. */
  setCaDisabled(id: string, at: number | null): Promise<boolean>;
  /** Retires an issuing CA (sets disabledAt once); true when this call did. */
  retireIssuingCa(id: string, at: number): Promise<boolean>;
  insertCertificate(cert: DeviceCertificate): Promise<void>;
  getCertificate(serial: string): Promise<DeviceCertificate | undefined>;
  getCertificateByFingerprint(fingerprint: string): Promise<DeviceCertificate | undefined>;
  listCertificates(deviceId: string): Promise<DeviceCertificate[]>;
  /**
   * The revoked certificates of a CA still valid at `validAt`: what its CRL lists (the signer
   * passes a time one CRL validity back, so that an entry outlives its certificate on at least
   * one scheduled CRL, as RFC 5280 5.1.2.6 asks). Past that, an expired certificate is refused
   * for being expired and its entry goes: the list holds one certificate lifetime of revocations.
   */
  listRevoked(caId: string, validAt: number): Promise<DeviceCertificate[]>;
  /**
   * Live certificates (neither revoked nor superseded) ending at or before `before`, of devices
   * not decommissioned whose every live certificate ends by then (a device with a newer one is
   * fine); soonest first.
   */
  listExpiring(before: number, limit: number): Promise<DeviceCertificate[]>;
  listCertificatesByCa(caId: string): Promise<DeviceCertificate[]>;
  /**
   * How many certificates of a CA still work at `at`: not revoked, not ended, and not
   * superseded before `supersededSince` (a superseded one works for the rotation overlap).
   */
  countLiveCertificates(caId: string, at: number, supersededSince: number): Promise<number>;
  /** Sets first_used_at if unset; true the first time. */
  markUsed(serial: string, at: number): Promise<boolean>;
  /** Marks every other live certificate of the device as superseded at `at`. */
  supersedeOthers(deviceId: string, keepSerial: string, at: number): Promise<number>;
  /** True when this call revoked it; false when it was already revoked or is unknown. */
  revoke(serial: string, at: number, reason: string): Promise<boolean>;
  insertClaimTokens(tokens: readonly ClaimToken[]): Promise<void>;
  getClaimToken(id: string): Promise<ClaimToken | undefined>;
  /** Uses the token once: true only for the one caller that finds it unused and unexpired. */
  useClaimToken(id: string, at: number): Promise<boolean>;
  /** Increments and returns the CRL number of a CA. */
  nextCrlNumber(caId: string, at: number): Promise<number>;
  /**
   * Keeps a CRL this platform signed for one of its own CAs (every node serves the same one),
   * unless a CRL number after `crlNumber` was handed out meanwhile: that signer read the
   * revocations later and keeps its own. True when kept.
   */
  saveCrl(caId: string, crlNumber: number, crlPem: string): Promise<boolean>;
}
