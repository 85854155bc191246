import assert from 'node:assert/strict';
import { type Socket, SocketAddress, connect, createServer } from 'node:net';
import { type TestContext, describe, it } from 'node:test';
import { rng } from '../testing/mqtt-fuzz.js';
import { type Decoded, FIXED_BYTES, MAX_HEADER_BYTES, REFUSAL_REASONS, SIGNATURE, decodeProxyV2, ipv6, readProxyHeader } from './proxy-protocol.js';

/** A v2 header as a balancer writes it; `famProto` 0x11 is TCP over IPv4, 0x21 TCP over IPv6. */
function header(o: { verCmd?: number; famProto?: number; addresses?: Buffer; tlvs?: Buffer; length?: number }): Buffer {
  const body = Buffer.concat([o.addresses ?? Buffer.alloc(0), o.tlvs ?? Buffer.alloc(0)]);
  const fixed = Buffer.from([o.verCmd ?? 0x21, o.famProto ?? 0x11, 0, 0]);
  fixed.writeUInt16BE(o.length ?? body.length, 2);
  return Buffer.concat([SIGNATURE, fixed, body]);
}

function inet(src: string, dst: string, srcPort: number, dstPort: number): Buffer {
  const b = Buffer.alloc(12);
  src.split('.').forEach((n, i) => b.writeUInt8(Number(n), i));
  dst.split('.').forEach((n, i) => b.writeUInt8(Number(n), 4 + i));
  b.writeUInt16BE(srcPort, 8);
  b.writeUInt16BE(dstPort, 10);
  return b;
}

function inet6(src: Buffer, dst: Buffer, srcPort: number, dstPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(srcPort, 0);
  ports.writeUInt16BE(dstPort, 2);
  return Buffer.concat([src, dst, ports]);
}

const v6 = (groups: number[]) => Buffer.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
const refusal = (d: Decoded) => (d.kind === 'refused' ? d.reason : d.kind);

describe('PROXY protocol v2 decoder', () => {
  it('[PROXY-v2 2.2 signature] anything that does not start with the 12-byte signature is refused at the first differing byte', () => {
    // A TLS ClientHello, a v1 text header, and the signature with one byte changed.
    assert.equal(refusal(decodeProxyV2(Buffer.from([0x16, 0x03, 0x01]))), 'bad_signature');
    assert.equal(refusal(decodeProxyV2(Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 1234 8883\r\n'))), 'bad_signature');
    for (let i = 0; i < SIGNATURE.length; i += 1) {
      const bad = Buffer.from(SIGNATURE.subarray(0, i + 1));
      bad[i] = (bad[i] as number) ^ 0x01;
      assert.equal(refusal(decodeProxyV2(bad)), 'bad_signature', `byte ${i}`);
    }
    // A correct prefix waits for more.
    for (let i = 0; i <= SIGNATURE.length; i += 1) assert.equal(decodeProxyV2(SIGNATURE.subarray(0, i)).kind, 'incomplete');
  });

  it('[PROXY-v2 2.2 version] the high nibble of the 13th byte must be 2', () => {
    for (const verCmd of [0x01, 0x11, 0x31, 0xf1]) assert.equal(refusal(decodeProxyV2(header({ verCmd, addresses: inet('1.2.3.4', '5.6.7.8', 1, 2) }))), 'bad_version');
  });

  it('[PROXY-v2 2.2 command] only LOCAL (0) and PROXY (1); other values are dropped', () => {
    for (const verCmd of [0x22, 0x2f]) assert.equal(refusal(decodeProxyV2(header({ verCmd, addresses: inet('1.2.3.4', '5.6.7.8', 1, 2) }))), 'bad_command');
  });

  it('[PROXY-v2 2.2 PROXY] TCP over IPv4: source and destination addresses and ports', () => {
    const h = header({ addresses: inet('203.0.113.7', '10.0.0.2', 51_234, 8883) });
    assert.deepEqual(decodeProxyV2(Buffer.concat([h, Buffer.from([0x16, 0x03])])), {
      kind: 'header',
      header: { command: 'proxy', length: 28, family: 'ipv4', source: { address: '203.0.113.7', port: 51_234 }, destination: { address: '10.0.0.2', port: 8883 } },
    });
  });

  it('[PROXY-v2 2.2 PROXY] TCP over IPv6, in the text form Node gives remoteAddress', () => {
    const src = v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0x0042]);
    const dst = v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0002]);
    const d = decodeProxyV2(header({ famProto: 0x21, addresses: inet6(src, dst, 40_000, 8443) }));
    assert.deepEqual(d, {
      kind: 'header',
      header: { command: 'proxy', length: 52, family: 'ipv6', source: { address: '2001:db8::42', port: 40_000 }, destination: { address: '::ffff:10.0.0.2', port: 8443 } },
    });
  });

  it('[PROXY-v2 2.2 address formatting] IPv6 text matches Node (net.SocketAddress) for 2,000 seeded addresses, zero runs included', () => {
    const r = rng(0x9e3779b9);
    for (let n = 0; n < 2000; n += 1) {
      // Mostly zero groups, so that runs, ties, mapped and compatible forms all come up.
      const groups = Array.from({ length: 8 }, () => (r.chance(0.55) ? 0 : r.chance(0.1) ? 0xffff : r.int(0x10000)));
      const bytes = v6(groups);
      const expected = new SocketAddress({ address: groups.map((g) => g.toString(16)).join(':'), family: 'ipv6' }).address;
      assert.equal(ipv6(bytes, 0), expected, groups.join(','));
    }
  });

  it('[PROXY-v2 2.2 LOCAL] a LOCAL command is accepted whatever its family, and its address block is skipped', () => {
    for (const famProto of [0x00, 0x11, 0x21, 0x31]) {
      const d = decodeProxyV2(header({ verCmd: 0x20, famProto, addresses: Buffer.alloc(7) }));
      assert.deepEqual(d, { kind: 'header', header: { command: 'local', length: FIXED_BYTES + 7 } });
    }
  });

  it('[PROXY-v2 2.2 family] a PROXY command for UNSPEC, UNIX, UDP or an unassigned family is refused', () => {
    for (const famProto of [0x00, 0x01, 0x10, 0x12, 0x22, 0x31, 0x32, 0x41, 0xf1]) {
      assert.equal(refusal(decodeProxyV2(header({ famProto, addresses: Buffer.alloc(36) }))), 'unsupported_family', famProto.toString(16));
    }
  });

  it('[PROXY-v2 2.2 length] a length shorter than the address block is refused; one past the bound is refused before its bytes arrive', () => {
    assert.equal(refusal(decodeProxyV2(header({ addresses: Buffer.alloc(11) }))), 'short_address_block');
    assert.equal(refusal(decodeProxyV2(header({ famProto: 0x21, addresses: Buffer.alloc(35) }))), 'short_address_block');
    const fixedOnly = header({ length: MAX_HEADER_BYTES - FIXED_BYTES + 1 });
    assert.equal(refusal(decodeProxyV2(fixedOnly)), 'too_long');
    assert.equal(refusal(decodeProxyV2(header({ length: 0xffff }))), 'too_long');
    // Exactly at the bound is accepted once complete.
    const tlvs = Buffer.alloc(MAX_HEADER_BYTES - FIXED_BYTES - 12);
    assert.equal(decodeProxyV2(header({ addresses: inet('1.2.3.4', '5.6.7.8', 1, 2), tlvs })).kind, 'header');
  });

  it('[PROXY-v2 2.2 TLV] TLVs after the addresses are skipped; the header length covers them', () => {
    const tlvs = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x00, 0x05, 0x00, 0x03, 0x61, 0x62, 0x63]);
    const h = header({ addresses: inet('192.0.2.1', '192.0.2.2', 1000, 2000), tlvs });
    const d = decodeProxyV2(Buffer.concat([h, Buffer.from('after')]));
    assert.equal(d.kind === 'header' && d.header.length, h.length);
  });

  it('[PROXY-v2 2.2 partial] every proper prefix of a valid header is incomplete, never a header or a refusal', () => {
    const h = header({ famProto: 0x21, addresses: inet6(v6([1, 2, 3, 4, 5, 6, 7, 8]), v6([8, 7, 6, 5, 4, 3, 2, 1]), 1, 2), tlvs: Buffer.alloc(20, 0xaa) });
    for (let i = 0; i < h.length; i += 1) assert.equal(decodeProxyV2(h.subarray(0, i)).kind, 'incomplete', `prefix ${i}`);
    assert.equal(decodeProxyV2(h).kind, 'header');
  });

  it('[PROXY-v2 robustness] 20,000 seeded garbage, truncated and bit-flipped inputs: never a throw, only a header, incomplete or a named refusal, and a header never longer than the bound or the input', () => {
    const r = rng(20_240_601);
    const valid = [
      header({ addresses: inet('198.51.100.9', '10.1.1.1', 65_535, 0) }),
      header({ famProto: 0x21, addresses: inet6(v6([0xfe80, 0, 0, 0, 1, 2, 3, 4]), v6([0, 0, 0, 0, 0, 0, 0, 1]), 9, 9), tlvs: Buffer.alloc(30, 7) }),
      header({ verCmd: 0x20, famProto: 0x00 }),
    ];
    for (let n = 0; n < 20_000; n += 1) {
      let input: Buffer;
      const base = Buffer.from(r.pick(valid));
      switch (r.int(4)) {
        case 0:
          input = r.bytes(r.int(600));
          break;
        case 1:
          input = base.subarray(0, r.int(base.length + 1));
          break;
        case 2: {
          input = base;
          for (let k = 0; k < 1 + r.int(4); k += 1) {
            const at = r.int(input.length);
            input[at] = (input[at] as number) ^ (1 << r.int(8));
          }
          break;
        }
        default:
          input = Buffer.concat([SIGNATURE, r.bytes(r.int(600))]);
      }
      let d: Decoded;
      try {
        d = decodeProxyV2(input);
      } catch (err) {
        assert.fail(`threw on ${input.toString('hex')}: ${String(err)}`);
      }
      if (d.kind === 'refused') assert.ok(REFUSAL_REASONS.includes(d.reason));
      if (d.kind === 'header') assert.ok(d.header.length <= Math.min(MAX_HEADER_BYTES, input.length));
      if (d.kind === 'incomplete') assert.ok(input.length < MAX_HEADER_BYTES);
    }
  });
});

/** A connected pair of TCP sockets on loopback, both closed when the test ends. */
async function socketPair(t: TestContext): Promise<{ client: Socket; server: Socket }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const server = await accepted;
  client.on('error', () => undefined);
  server.on('error', () => undefined);
  t.after(() => {
    client.destroy();
    server.destroy();
    listener.close();
  });
  return { client, server };
}

function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.resume();
  });
}

describe('PROXY protocol v2 on a socket', () => {
  it('reads a header sent one byte at a time and puts back every byte after it', async (t) => {
    const { client, server } = await socketPair(t);
    const h = header({ addresses: inet('203.0.113.50', '127.0.0.1', 4242, 8883), tlvs: Buffer.from([0x04, 0x00, 0x00]) });
    const after = Buffer.from('\x16\x03\x01 the client hello and more');
    const reading = readProxyHeader(server, { timeoutMs: 10_000 });
    const wire = Buffer.concat([h, after]);
    // One byte per write, the header and the first bytes after it split across reads.
    for (let i = 0; i < h.length + 3; i += 1) await new Promise<void>((resolve) => client.write(wire.subarray(i, i + 1), () => resolve()));
    client.end(wire.subarray(h.length + 3));
    const read = await reading;
    assert.deepEqual(read.ok && read.header, { command: 'proxy', length: h.length, family: 'ipv4', source: { address: '203.0.113.50', port: 4242 }, destination: { address: '127.0.0.1', port: 8883 } });
    assert.ok(server.isPaused(), 'left paused for the TLS server');
    assert.deepEqual(await readAll(server), after);
  });

  it('refuses a peer that sends something else without waiting for more', async (t) => {
    const { client, server } = await socketPair(t);
    const reading = readProxyHeader(server, { timeoutMs: 10_000 });
    client.write(Buffer.from([0x16, 0x03, 0x01, 0x00]));
    assert.deepEqual(await reading, { ok: false, reason: 'bad_signature' });
  });

  it('refuses a header that never completes when the timeout passes', async (t) => {
    const { client, server } = await socketPair(t);
    const reading = readProxyHeader(server, { timeoutMs: 100 });
    client.write(header({ addresses: inet('1.2.3.4', '5.6.7.8', 1, 2) }).subarray(0, 20));
    assert.deepEqual(await reading, { ok: false, reason: 'timeout' });
  });

  it('refuses a peer that closes inside the header', async (t) => {
    const { client, server } = await socketPair(t);
    const reading = readProxyHeader(server, { timeoutMs: 10_000 });
    client.end(SIGNATURE.subarray(0, 8));
    assert.deepEqual(await reading, { ok: false, reason: 'closed' });
  });

  it('refuses an announced length past the bound before reading it', async (t) => {
    const { client, server } = await socketPair(t);
    const reading = readProxyHeader(server, { timeoutMs: 10_000 });
    client.write(header({ length: 60_000 }));
    assert.deepEqual(await reading, { ok: false, reason: 'too_long' });
  });
});
