import { isIP } from 'node:net';

/** One address (`10.0.0.5`, `fd00::7`) or CIDR range (`10.0.0.0/24`, `fd00::/64`). */
export interface AddressRange {
  readonly address: string;
  /** Prefix length in bits: 32 (IPv4) or 128 (IPv6) for a single address. */
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * Reads a comma-separated list of addresses and CIDR ranges; every entry that is not one is a
 * problem (the config loader reports them all at once). An empty list is valid (nothing
 * listed). A `/0` range is refused: it would list every address there is.
 */
export function parseAddressRanges(list: string): { readonly ranges: readonly AddressRange[]; readonly problems: readonly string[] } {
  const ranges: AddressRange[] = [];
  const problems: string[] = [];
  for (const entry of list
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [address = '', prefixText, extra] = entry.split('/');
    const version = isIP(address);
    const family = version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
    const bits = version === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (!family || extra !== undefined || !(prefix >= 1 && prefix <= bits)) {
      problems.push(`"${entry}" is not an IPv4 or IPv6 address or a CIDR range (address/1-${family ? bits : '32 or 128'})`);
      continue;
    }
    ranges.push({ address, prefix, family });
  }
  return { ranges, problems };
}
