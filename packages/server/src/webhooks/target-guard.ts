import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { PlatformError } from '@bulwark/core';

/** What the operator allows webhook targets to be (both off by default). */
export interface TargetPolicy {
  /** Plain http:// URLs (webhooks.allowHttp). */
  readonly allowHttp: boolean;
  /** Addresses in the ranges below (webhooks.allowPrivateTargets). */
  readonly allowPrivateTargets: boolean;
}

/** Why a URL or an address was refused; the label of bulwark_webhook_targets_refused_total. */
export type RefusalReason = 'malformed' | 'not_https' | 'credentials' | 'unresolvable' | AddressKind;

export type AddressKind = 'unspecified' | 'loopback' | 'private' | 'link_local' | 'shared' | 'multicast' | 'reserved';

/** Ranges a webhook may not reach unless allowed: the platform's own host and networks behind it (SSRF). */
const RANGES: readonly [AddressKind, string, number, 'ipv4' | 'ipv6'][] = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['shared', '100.64.0.0', 10, 'ipv4'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link_local', '169.254.0.0', 16, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['reserved', '198.18.0.0', 15, 'ipv4'],
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'],
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', 'fc00::', 7, 'ipv6'],
  ['link_local', 'fe80::', 10, 'ipv6'],
  ['multicast', 'ff00::', 8, 'ipv6'],
];

const LISTS = new Map<AddressKind, BlockList>();
for (const [kind, address, prefix, family] of RANGES) {
  let list = LISTS.get(kind);
  if (!list) LISTS.set(kind, (list = new BlockList()));
  list.addSubnet(address, prefix, family);
}

/** The range an address falls in, or null for an ordinary public address. IPv4 inside IPv6 (mapped, NAT64) is judged as IPv4. */
export function classifyAddress(address: string): AddressKind | null {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'reserved';
  const embedded = family === 6 ? (/^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1] ?? hexMapped(bare)) : undefined;
  if (embedded) return classifyAddress(embedded);
  for (const [kind, list] of LISTS) if (list.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return kind;
  return null;
}

/** `::ffff:7f00:1` (mapped IPv4 written in hex) as dotted IPv4. */
function hexMapped(address: string): string | undefined {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!m) return undefined;
  const hi = parseInt(m[1] as string, 16);
  const lo = parseInt(m[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function refused(reason: RefusalReason, message: string): PlatformError {
  const code = reason === 'malformed' || reason === 'not_https' || reason === 'credentials' ? 'BULWARK_ERR_WEBHOOK_URL_REFUSED' : 'BULWARK_ERR_WEBHOOK_TARGET_REFUSED';
  return new PlatformError(code, message, { details: { reason } });
}

/** The URL's form: http(s), no user:password, https unless http is allowed. */
export function checkUrl(text: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refused('malformed', `"${text.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refused('malformed', `webhook URLs are https:// (got ${url.protocol})`);
  if (url.protocol === 'http:' && !policy.allowHttp) throw refused('not_https', 'webhook URLs must be https:// (the operator may allow http:// with webhooks.allowHttp)');
  if (url.username !== '' || url.password !== '') throw refused('credentials', 'a webhook URL may not carry a user or password: the receiver checks the signature instead');
  return url;
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Resolves a host and checks every address it gives; refuses it when any is in a refused
 * range (a name that answers both public and private addresses is refused too).
 */
export async function resolveTarget(hostname: string, policy: TargetPolicy, resolve: Resolver = systemResolver): Promise<{ address: string; family: number }[]> {
  const host = hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  let addresses: { address: string; family: number }[];
  if (literal !== 0) addresses = [{ address: host, family: literal }];
  else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw refused('unresolvable', `${host} does not resolve: ${(err as Error).message}`);
    }
    if (addresses.length === 0) throw refused('unresolvable', `${host} does not resolve`);
  }
  if (!policy.allowPrivateTargets) {
    for (const a of addresses) {
      const kind = classifyAddress(a.address);
      if (kind) throw refused(kind, `${host} resolves to ${a.address} (${kind.replace('_', '-')}): webhooks may not reach it unless the operator sets webhooks.allowPrivateTargets`);
    }
  }
  return addresses;
}
