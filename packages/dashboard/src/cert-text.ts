import { q } from './api';
import { href } from './router';
import type { Certificate } from './types';

export const DAY_MS = 86_400_000;

/** The windows the certificates page offers, in days; 30 is the API's and the CLI's default. */
export const CERT_WINDOWS = [7, 30, 90] as const;
export type CertWindow = (typeof CERT_WINDOWS)[number];
export const DEFAULT_CERT_WINDOW: CertWindow = 30;

/** The device page warns when the newest live certificate ends within this many days. */
export const CERT_WARN_DAYS = 30;

export function certWindowOf(params: URLSearchParams): CertWindow {
  const asked = Number(params.get('days'));
  return CERT_WINDOWS.find((w) => w === asked) ?? DEFAULT_CERT_WINDOW;
}

export const certificatesHref = (days: number): string => `${href('certificates')}${q({ days: days === DEFAULT_CERT_WINDOW ? undefined : days })}`;

const days = (n: number) => `${n} day${n === 1 ? '' : 's'}`;

/** Whole days, rounded down as `bulwark certs expiring` does: `in 3 days`, `in under a day`, `expired 10 days ago`. */
export function endsText(msLeft: number): string {
  const n = Math.floor(Math.abs(msLeft) / DAY_MS);
  if (msLeft > 0) return n === 0 ? 'in under a day' : `in ${days(n)}`;
  return n === 0 ? 'expired less than a day ago' : `expired ${days(n)} ago`;
}

/** The certificate the device connects with: its newest one neither revoked nor superseded (the list is oldest first). */
export function newestLive(certs: readonly Certificate[]): Certificate | undefined {
  return certs.filter((c) => c.revokedAt === null && c.supersededAt === null).at(-1);
}
