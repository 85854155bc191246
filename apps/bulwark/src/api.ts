import { InvalidArgumentError, Option } from 'commander';
import { positiveInt } from './args.js';
import type { Session } from './client.js';
import { time } from './output.js';

/** The API's device and certificate shapes, and the calls several commands share. */

export interface Device {
  readonly id: string;
  readonly serial: string | null;
  readonly model: string | null;
  readonly hardwareRevision: string | null;
  readonly firmwareVersion: string | null;
  readonly securityVersion: number | null;
  readonly owner: string | null;
  readonly location: string | null;
  readonly tags: string[];
  readonly state: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly connectivity: {
    readonly online: boolean;
    readonly onlineSince: number | null;
    readonly lastSeenAt: number | null;
    readonly connectCount: number;
    readonly lastDisconnectAt: number | null;
    readonly lastDisconnectReason: string | null;
  };
}

export interface ClaimToken {
  readonly deviceId: string;
  readonly token: string;
  readonly expiresAt: number;
}

/** A device certificate as the API lists it (without its PEM). */
export interface Certificate {
  readonly serial: string;
  readonly deviceId: string;
  readonly caId: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly createdAt: number;
  readonly firstUsedAt: number | null;
  readonly supersededAt: number | null;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

export function certificateStatus(c: Certificate, now = Date.now()): string {
  if (c.revokedAt !== null) return `revoked ${time(c.revokedAt)} (${c.revocationReason ?? 'no reason'})`;
  if (c.notAfter <= now) return 'expired';
  if (c.supersededAt !== null) return `superseded ${time(c.supersededAt)} (works until the new one is used)`;
  return c.firstUsedAt === null ? 'valid, not used yet' : 'valid, in use';
}

/** What POST /api/v1/enroll and POST /api/v1/devices/:id/certificates answer. */
export interface Issued {
  readonly deviceId: string;
  readonly serial: string;
  readonly certificate: string;
  readonly caChain: string;
  readonly notAfter: number;
}

const devicePath = (id: string, rest = '') => `/api/v1/devices/${encodeURIComponent(id)}${rest}`;

export const ttlOption = () => new Option('--ttl-seconds <n>', 'how long the claim token stays usable (default: the server\'s, 7 days)').argParser(ttlSeconds);

export function ttlSeconds(value: string): number {
  const n = positiveInt(31_536_000)(value);
  if (n < 60) throw new InvalidArgumentError('must be at least 60');
  return n;
}

export function createClaimToken(session: Session, id: string, ttl: number | undefined): Promise<ClaimToken> {
  return session.call<ClaimToken>('POST', devicePath(id, '/claim-tokens'), { body: ttl !== undefined ? { ttlSeconds: ttl } : {} });
}

