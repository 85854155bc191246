import type { ListeningSocket } from '@bulwark/protocol';

/** TCP_LISTEN and TCP_CLOSE in the `st` column of /proc/net/{tcp,udp}[6]. */
const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

/**
 * An address as /proc/net prints it: each 32-bit word in hex, in the host's byte order
 * (8 hex digits for IPv4, 32 for IPv6). Undefined when it is neither.
 */
export function procAddress(hex: string, littleEndian: boolean): string | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // The URL parser writes an IPv6 address in its canonical short form (longest zero run as ::).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/**
 * The listening sockets in one /proc/net/{tcp,tcp6,udp,udp6} file: TCP sockets in LISTEN,
 * UDP sockets bound and not connected. Lines that do not parse are skipped.
 */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', littleEndian: boolean): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const [local, remote, state] = [cols[1], cols[2], cols[3]];
    if (local === undefined || remote === undefined || state === undefined) continue;
    if (state.toUpperCase() !== (proto === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED)) continue;
    if (proto === 'udp' && !/^0+:0000$/.test(remote)) continue;
    const [addrHex, portHex] = local.split(':');
    const address = addrHex === undefined ? undefined : procAddress(addrHex, littleEndian);
    const port = portHex !== undefined && /^[0-9A-Fa-f]{4}$/.test(portHex) ? Number.parseInt(portHex, 16) : undefined;
    if (address === undefined || port === undefined) continue;
    out.push({ proto, port, address });
  }
  return out;
}

/** Loopback-only: reachable from this machine alone. */
export const isLoopback = (address: string): boolean => address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:7f');
