import { InvalidArgumentError, Option } from 'commander';
import { positiveInt } from './args.js';
import type { Session } from './client.js';
import { time } from './output.js';
import type { DeviceCertificate, Device as ServerDevice, IssuedClaimToken } from '@bulwark/server';

/** The API's device and certificate shapes, and the calls several commands share. */

/** The API's device, claim-token and certificate shapes are the server's own types. */
export type Device = Omit<ServerDevice, 'suspendedFrom'>;
export type ClaimToken = IssuedClaimToken;
/** A device certificate as the API lists it (without its PEM). */
export type Certificate = Omit<DeviceCertificate, 'pem'>;

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

export const ttlOption = () => new Option('--ttl-seconds <n>', "how long the claim token stays usable (default: the server's, 7 days)").argParser(ttlSeconds);

export function ttlSeconds(value: string): number {
  const n = positiveInt(31_536_000)(value);
  if (n < 60) throw new InvalidArgumentError('must be at least 60');
  return n;
}

export function createClaimToken(session: Session, id: string, ttl: number | undefined): Promise<ClaimToken> {
  return session.call<ClaimToken>('POST', devicePath(id, '/claim-tokens'), { body: ttl !== undefined ? { ttlSeconds: ttl } : {} });
}
