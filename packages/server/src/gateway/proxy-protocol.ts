import type { Socket } from 'node:net';

/**
 * PROXY protocol version 2 (HAProxy's proxy-protocol.txt, section 2.2): the binary header a
 * TCP load balancer writes before the client's first byte, naming the client's address.
 *
 *   12 bytes  signature \r\n\r\n\0\r\nQUIT\n
 *    1 byte   version (high nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY)
 *    1 byte   address family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and transport (low: 0 UNSPEC, 1 STREAM, 2 DGRAM)
 *    2 bytes  length of what follows, network order
 *    ...      addresses (INET: 4 + 4 + 2 + 2 bytes; INET6: 16 + 16 + 2 + 2), then TLVs (skipped)
 *
 * Only TCP over IPv4 and IPv6 is taken from a PROXY command; a LOCAL command (the balancer's
 * own health check) keeps the socket's address. The decoder never throws: every input is a
 * header, a need for more bytes, or a refusal with a reason.
 */

export const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Signature, version/command, family/transport and the length field. */
export const FIXED_BYTES = 16;

/**
 * Longest header accepted: the fixed part, the largest address block of the spec (AF_UNIX,
 * 216 bytes) and 256 bytes of TLVs (cloud balancers send one or two small ones). A longer
 * announced length is refused before it is read.
 */
export const MAX_HEADER_BYTES = FIXED_BYTES + 216 + 256;

const INET_BLOCK = 12;
const INET6_BLOCK = 36;

export type ProxyRefusalReason =
  /** The first bytes are not the v2 signature (no header, a v1 text header, or a TLS ClientHello). */
  | 'bad_signature'
  /** The version nibble is not 2. */
  | 'bad_version'
  /** The command nibble is neither LOCAL nor PROXY. */
  | 'bad_command'
  /** A PROXY command for anything but TCP over IPv4 or IPv6. */
  | 'unsupported_family'
  /** The announced length is shorter than the family's address block. */
  | 'short_address_block'
  /** The announced length is past MAX_HEADER_BYTES. */
  | 'too_long'
  /** The header did not complete in time. */
  | 'timeout'
  /** The peer closed (or the socket failed) before the header was complete. */
  | 'closed';

export const REFUSAL_REASONS: readonly ProxyRefusalReason[] = ['bad_signature', 'bad_version', 'bad_command', 'unsupported_family', 'short_address_block', 'too_long', 'timeout', 'closed'];

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

export type ProxyHeader =
  /** A connection of the balancer itself (health check): use the socket's own endpoints. */
  { readonly command: 'local'; readonly length: number } | { readonly command: 'proxy'; readonly length: number; readonly family: 'ipv4' | 'ipv6'; readonly source: ProxyEndpoint; readonly destination: ProxyEndpoint };

export type Decoded = { readonly kind: 'header'; readonly header: ProxyHeader } | { readonly kind: 'incomplete' } | { readonly kind: 'refused'; readonly reason: ProxyRefusalReason };

const INCOMPLETE: Decoded = Object.freeze({ kind: 'incomplete' });
const refused = (reason: ProxyRefusalReason): Decoded => ({ kind: 'refused', reason });

/**
 * Decodes the header at the start of `input`. `header.length` is the number of bytes it
 * takes (what follows belongs to the client). Refuses as soon as the bytes seen so far cannot
 * start a valid header, so that a peer that sends something else is not waited for.
 */
export function decodeProxyV2(input: Uint8Array, maxBytes = MAX_HEADER_BYTES): Decoded {
  const seen = Math.min(input.length, SIGNATURE.length);
  for (let i = 0; i < seen; i += 1) if (input[i] !== SIGNATURE[i]) return refused('bad_signature');
  if (input.length <= 12) return INCOMPLETE;
  const verCmd = input[12] as number;
  if (verCmd >> 4 !== 2) return refused('bad_version');
  const command = verCmd & 0x0f;
  if (command > 1) return refused('bad_command');
  if (input.length <= 13) return INCOMPLETE;
  const famProto = input[13] as number;
  const block = command === 0 ? 0 : famProto === 0x11 ? INET_BLOCK : famProto === 0x21 ? INET6_BLOCK : -1;
  if (block < 0) return refused('unsupported_family');
  if (input.length < FIXED_BYTES) return INCOMPLETE;
  const length = (((input[14] as number) << 8) | (input[15] as number)) + FIXED_BYTES;
  if (length > maxBytes) return refused('too_long');
  if (length - FIXED_BYTES < block) return refused('short_address_block');
  if (input.length < length) return INCOMPLETE;
  if (command === 0) return { kind: 'header', header: { command: 'local', length } };
  const a = FIXED_BYTES;
  if (block === INET_BLOCK) {
    return {
      kind: 'header',
      header: {
        command: 'proxy',
        length,
        family: 'ipv4',
        source: { address: ipv4(input, a), port: u16(input, a + 8) },
        destination: { address: ipv4(input, a + 4), port: u16(input, a + 10) },
      },
    };
  }
  return {
    kind: 'header',
    header: {
      command: 'proxy',
      length,
      family: 'ipv6',
      source: { address: ipv6(input, a), port: u16(input, a + 32) },
      destination: { address: ipv6(input, a + 16), port: u16(input, a + 34) },
    },
  };
}

const u16 = (b: Uint8Array, at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);

function ipv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * The text form Node gives a socket's remoteAddress (libuv's inet_ntop: lower case, the first
 * longest run of two or more zero groups as `::`; IPv4-mapped addresses as ::ffff:a.b.c.d and
 * IPv4-compatible ones as ::a.b.c.d).
 */
export function ipv6(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i += 1) groups.push(u16(b, at + i * 2));
  const leadingZeros = groups.findIndex((g) => g !== 0);
  if (leadingZeros === 5 && groups[5] === 0xffff) return `::ffff:${ipv4(b, at + 12)}`;
  if (leadingZeros === 6) return `::${ipv4(b, at + 12)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export type ProxyRead = { readonly ok: true; readonly header: ProxyHeader } | { readonly ok: false; readonly reason: ProxyRefusalReason };

export interface ReadOptions {
  /** Longest wait for the complete header. */
  readonly timeoutMs: number;
  readonly maxBytes?: number;
}

/**
 * Reads the header from a socket that has not been read yet. On success the bytes after the
 * header are put back (`unshift`) and the socket is left paused, to be handed to the TLS
 * server. Never rejects; on a refusal the caller closes the socket.
 */
export function readProxyHeader(socket: Socket, options: ReadOptions): Promise<ProxyRead> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (result: ProxyRead, rest?: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onGone);
      socket.removeListener('close', onGone);
      socket.removeListener('error', onGone);
      socket.pause();
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(result);
    };
    const onGone = () => finish({ ok: false, reason: 'closed' });
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const decoded = decodeProxyV2(buffered, options.maxBytes);
      if (decoded.kind === 'incomplete') return;
      if (decoded.kind === 'refused') return finish({ ok: false, reason: decoded.reason });
      finish({ ok: true, header: decoded.header }, buffered.subarray(decoded.header.length));
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), options.timeoutMs);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
}
