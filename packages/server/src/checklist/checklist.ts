import type { PostureFinding } from '../health/index.js';

/**
 * `bulwark audit`: the seed's security checklist evaluated on a live deployment. Each check
 * passes, warns or fails with its evidence (what it looked at, what it found) and what to do,
 * and names the ETSI EN 303 645 provision it serves.
 */

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found (on a pass too: what was looked at). */
  readonly evidence: readonly string[];
  /** What to do about a warn or a fail. */
  readonly remediation: string;
  /** The ETSI EN 303 645 provisions it serves, e.g. `5.3-13`. */
  readonly etsi: readonly string[];
}

export interface ChecklistReport {
  readonly at: number;
  readonly checks: readonly CheckResult[];
  readonly summary: Readonly<Record<CheckStatus, number>>;
}

export interface ExpiringCertificate {
  readonly deviceId: string;
  readonly serial: string;
  readonly notAfter: number;
}
export interface DeviceRef {
  readonly deviceId: string;
  readonly detail: string;
}
export interface ServiceAccountScopes {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly string[];
}
export interface CrlAge {
  readonly caId: string;
  readonly updatedAt: number | null;
}

/** The read-only queries the checks need (over several contexts' tables). */
export interface ChecklistRepository {
  expiringCertificates(before: number, limit: number): Promise<{ count: number; sample: ExpiringCertificate[] }>;
  belowSecurityVersion(floor: number, limit: number): Promise<{ count: number; sample: DeviceRef[] }>;
  rolloutsWithExpiredFirmware(now: number): Promise<{ rolloutId: string; name: string; artifact: string; expiresAt: number }[]>;
  serviceAccounts(): Promise<ServiceAccountScopes[]>;
  staleDevices(seenBefore: number, limit: number): Promise<{ count: number; sample: DeviceRef[] }>;
  lastAudited(action: string): Promise<number | undefined>;
  firstAudited(): Promise<number | undefined>;
  crlAges(caIds: readonly string[]): Promise<CrlAge[]>;
  /** Devices whose session was taken over from another address at least `min` times since then, with the addresses involved. */
  takeovers(since: number, min: number): Promise<DeviceTakeovers[]>;
  /** Live devices whose newest posture has findings: how many with a failing one, how many with warnings only, and the first `limit` (failing first). */
  postureFindings(limit: number): Promise<{ fail: number; warn: number; sample: DevicePostureFindings[] }>;
}

export interface DevicePostureFindings {
  readonly deviceId: string;
  readonly reportedAt: number;
  readonly findings: readonly PostureFinding[];
}

export interface DeviceTakeovers {
  readonly deviceId: string;
  readonly count: number;
  readonly addresses: readonly string[];
}
