import { type Packet, generate } from 'mqtt-packet';
import type { TestServer } from './harness.js';
import type { EnrolledDevice } from './devices.js';
import type { FaultCapture } from './fault-capture.js';
import { type RawDevice, codeOf, hex, open, rawPublish, session, str, u16, u32, varint, within } from './raw-mqtt.js';

/**
 * Test-only: a seeded MQTT fuzzer. Valid packets of both levels are mutated (bits, bytes, lengths, cuts, noise) and sent
 * over raw mTLS connections; each input must be answered or end its connection, MQTT 5 ones with a DISCONNECT reason, and
 * the same seed replays the same inputs.
 */

const MiB = 1024 * 1024;

/** mulberry32: a small seeded PRNG, so that a run replays exactly from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { int, chance: (p: number) => next() < p, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))) };
}
/** A seeded random source: `int(n)` in [0, n), `chance(p)`, `pick(xs)`, `bytes(n)`. */
export type Rng = ReturnType<typeof rng>;

/** The fixed header at `at`: where the body starts and the announced length; 'short' if the bytes end inside it, 'overlong' past four length bytes. */
function header(b: Buffer, at = 0): { body: number; length: number } | 'short' | 'overlong' {
  let length = 0;
  for (let i = 0; i < 4; i++) {
    const byte = b[at + 1 + i];
    if (byte === undefined) return 'short';
    length += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) return { body: at + 2 + i, length };
  }
  return 'overlong';
}

/** How the server splits `b`: the types of the whole packets, then the end: clean, cut short inside a packet that claims `announced` bytes, or a length past four bytes. */
function scan(b: Buffer): { types: number[]; end: 'whole' | 'overlong' | 'cut'; announced: number } {
  const types: number[] = [];
  for (let at = 0; at < b.length;) {
    const h = header(b, at);
    if (typeof h === 'string' || h.body + h.length > b.length) return { types, end: h === 'overlong' ? 'overlong' : 'cut', announced: typeof h === 'string' ? 0 : h.length };
    types.push((b[at] ?? 0) >> 4);
    at = h.body + h.length;
  }
  return { types, end: 'whole', announced: 0 };
}

const insertAt = (b: Buffer, i: number, x: Buffer) => Buffer.concat([b.subarray(0, i), x, b.subarray(i)]);
const MUTATIONS: ((r: Rng, b: Buffer, pool: readonly Buffer[], maxPacket: number) => Buffer)[] = [
  (r, b) => {
    const c = Buffer.from(b),
      i = r.int(c.length);
    if (c.length) c[i] = (c[i] ?? 0) ^ (1 << r.int(8));
    return c;
  }, // a bit flipped
  (r, b) => {
    const c = Buffer.from(b);
    if (c.length) c[r.int(c.length)] = r.pick([0, 0x7f, 0x80, 0xff, r.int(256)]);
    return c;
  }, // a byte replaced
  (r, b) => insertAt(b, r.int(b.length + 1), r.bytes(1 + r.int(8))), // bytes inserted
  (r, b) => {
    const i = r.int(b.length + 1);
    return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + r.int(8))]);
  }, // bytes deleted
  (r, b) => {
    const i = r.int(b.length + 1);
    return insertAt(b, i, b.subarray(i, i + 1 + r.int(16)));
  }, // a run repeated
  (r, b) => b.subarray(0, r.int(b.length)), // cut short
  (r, b) => Buffer.concat([Buffer.from([r.int(256)]), b.subarray(1)]), // any type and flags
  (r, b, _pool, maxPacket) => {
    // another remaining length: tiny, shorter, longer, past the bound, anything, or five bytes long
    const h = header(b);
    const rest = b.subarray(typeof h === 'object' ? h.body : 2);
    const length = r.pick([r.int(4), Math.max(0, rest.length - 1 - r.int(3)), rest.length + 1 + r.int(4), maxPacket + 1 + r.int(MiB), r.int(268_435_456)]);
    return Buffer.concat([b.subarray(0, 1), r.chance(0.15) ? Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]) : varint(length), rest]);
  },
  (r, b, pool) => Buffer.concat([b, r.pick(pool)]), // another packet behind it
  (r) => r.bytes(r.int(64)), // noise
];
const mutate = (r: Rng, b: Buffer, pool: readonly Buffer[], maxPacket: number) => {
  for (let n = 1 + r.int(3); n > 0; n--) b = r.pick(MUTATIONS)(r, b, pool, maxPacket);
  return b;
};

/** Valid packets of one level from mqtt-packet's encoder, the fuzzer's starting points. */
function seeds(id: string, v: 4 | 5): { connects: Buffer[]; after: Buffer[] } {
  const g = (p: object) => generate(p as Packet, { protocolVersion: v });
  const own = `devices/${id}`;
  const five = v === 5;
  const connect = (extra: object) => g({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: v, clientId: id, clean: true, keepalive: 30, ...extra });
  const publish = (extra: object) => g({ cmd: 'publish', topic: `${own}/telemetry`, payload: Buffer.from('{"temp_c":20}'), qos: 0, retain: false, dup: false, ...extra });
  const v5 = (properties: object) => (five ? { properties } : {});
  const will = { topic: `${own}/events`, payload: Buffer.from('{"id":"w","type":"gone","ts":1}'), qos: 1, retain: false };
  return {
    connects: [connect({}), connect({ username: 'u', password: Buffer.from('p') }), connect({ clean: false, will, ...v5({ sessionExpiryInterval: 60, receiveMaximum: 10, maximumPacketSize: 4096, topicAliasMaximum: 4, userProperties: { a: 'b' } }) })],
    after: [
      publish({}),
      publish({
        topic: `${own}/events`,
        payload: Buffer.from('{"id":"e","type":"t","ts":1}'),
        qos: 1,
        messageId: 7,
        ...v5({ topicAlias: 1, payloadFormatIndicator: true, messageExpiryInterval: 30, contentType: 'application/json', responseTopic: `${own}/commands/c/result`, correlationData: Buffer.from('c1'), userProperties: { k: 'v' } }),
      }),
      five ? publish({ topic: '', qos: 1, messageId: 9, properties: { topicAlias: 1 } }) : publish({ topic: `${own}/logs`, payload: Buffer.from('[]'), qos: 2, messageId: 9 }),
      g({
        cmd: 'subscribe',
        messageId: 3,
        subscriptions: [
          { topic: `${own}/commands/#`, qos: 1, ...(five ? { nl: true, rap: false, rh: 0 } : {}) },
          { topic: `${own}/#`, qos: 0 },
        ],
      }),
      g({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: [`${own}/commands/#`] }),
      ...['puback', 'pubrec', 'pubrel', 'pubcomp'].map((cmd, i) => g({ cmd, messageId: 1 + i })),
      g({ cmd: 'pingreq' }),
      g({ cmd: 'disconnect', ...(five ? { reasonCode: 0, properties: { reasonString: 'bye' } } : {}) }),
      ...(five ? [g({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } })] : []),
    ],
  };
}

/** A PUBLISH with one to three MQTT 5 properties: identifiers mostly real, values of any property size. */
const propertyPublish = (r: Rng, topic: string) =>
  rawPublish(5, topic, {
    qos: r.pick([0, 1] as const),
    messageId: 1 + r.int(65_535),
    properties: Array.from({ length: 1 + r.int(3) }, () =>
      Buffer.concat([
        Buffer.from([r.chance(0.8) ? r.pick([1, 2, 3, 8, 9, 11, 17, 18, 19, 21, 22, 23, 24, 25, 26, 28, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42]) : r.int(256)]),
        r.pick([Buffer.from([r.int(256)]), u16(r.int(65_536)), u32(r.int(2 ** 32)), str(r.bytes(r.int(8))), varint(r.int(2 ** 21))]),
      ]),
    ),
  });

/**
 * What the lanes of a run found. `codes`: MQTT 5 DISCONNECT reason codes met, counted; `problems`: inputs after which the
 * server misbehaved (a stall, an MQTT 5 close without a reason, bytes that do not parse, a fault).
 */
export type Tally = { packets: number; connections: number; readonly codes: Map<string, number>; readonly problems: string[] };

/**
 * What the lanes of one run share: the tally they add to and the test process's fault capture (a fault is an input's problem).
 */
export type FuzzRun = { readonly tally: Tally; readonly faults: FaultCapture };

/**
 * Sends one input and waits for its outcome. Whole packets are followed by an UNSUBSCRIBE whose UNSUBACK (by packet id) shows
 * the session went on. A packet cut short is followed by the device's close (the server can only wait for the rest), unless
 * it claims more than the server takes: the server must end that one itself.
 */
async function step(raw: RawDevice, bytes: Buffer, marker: number, maxPacket: number, run: FuzzRun, sessionFrom: number | undefined): Promise<boolean> {
  const { tally, faults } = run;
  const shape = scan(bytes);
  const faultsBefore = faults.count;
  tally.packets += 1;
  const input = `v${raw.version}${sessionFrom === undefined ? ' before CONNECT' : ''} ${bytes.toString('hex')}`;
  const deviceCloses = shape.end === 'cut' && shape.announced <= maxPacket;
  raw.socket.write(shape.end !== 'whole' ? bytes : Buffer.concat([bytes, generate({ cmd: 'unsubscribe', messageId: marker, unsubscriptions: ['devices/x/sync'] }, { protocolVersion: raw.version })]));
  if (deviceCloses) raw.socket.end();
  const answered = Promise.race([raw.closed, raw.next((p) => p.cmd === 'unsuback' && p.messageId === marker).then((p) => (p ? 'alive' : 'closed'))]);
  let outcome = await within(10_000, faults.orFault(answered), 'answer').catch(() => 'stalled');
  // Lanes run side by side: a fault is this input's only if its own connection then neither answers nor closes.
  if (outcome === 'fault') outcome = await within(1000, answered, 'answer').catch(() => 'fault');
  if (outcome === 'fault') for (const f of faults.since(faultsBefore)) tally.problems.push(`${f.split('\n')[0]} after ${input}`);
  if (raw.unparsable.length > 0) tally.problems.push(`unparsable bytes from the server (${raw.unparsable.splice(0).join('; ')}) after ${input}`);
  if (outcome === 'alive') return true;
  if (outcome === 'stalled') tally.problems.push(`neither an answer nor a close within 10 s after ${input}`);
  if (outcome !== 'closed') {
    raw.socket.destroy();
    return false;
  }
  const disconnect = sessionFrom === undefined ? undefined : raw.received.slice(sessionFrom).find((p) => p.cmd === 'disconnect');
  if (disconnect) tally.codes.set(hex(codeOf(disconnect)), (tally.codes.get(hex(codeOf(disconnect))) ?? 0) + 1);
  // After an MQTT 5 CONNACK the server says why it ends, unless the device ended (its own DISCONNECT, or its close after a cut).
  if (raw.version === 5 && sessionFrom !== undefined && !disconnect && !deviceCloses && !shape.types.includes(14)) tally.problems.push(`closed without a DISCONNECT after ${input}`);
  return false;
}

/** One lane: `count` inputs for one device, drawn from `r`, over as many connections as they take. */
export async function fuzzLane(s: TestServer, d: EnrolledDevice, r: Rng, count: number, run: FuzzRun): Promise<void> {
  const { tally } = run;
  const maxPacket = s.server.mqtt?.maxPacketBytes ?? 0;
  const pools = { 4: seeds(d.id, 4), 5: seeds(d.id, 5) };
  let marker = 0;
  const send = (raw: RawDevice, bytes: Buffer, sessionFrom?: number) => step(raw, bytes, (marker = (marker % 65_535) + 1), maxPacket, run, sessionFrom);
  for (let left = count; left > 0; tally.connections += 1) {
    const version = r.chance(0.5) ? 5 : 4;
    const pool = pools[version];
    let raw: RawDevice;
    if (r.chance(0.2)) {
      // Before CONNECT: a broken CONNECT (or noise) is the first thing read; the answer comes in the level it claims.
      const bytes = mutate(r, r.pick(pool.connects), pool.after, maxPacket);
      const h = header(bytes);
      raw = await open(s, d, typeof h === 'object' && bytes[h.body + 6] === 5 ? 5 : 4);
      left -= 1;
      await send(raw, bytes);
    } else {
      raw = await session(s, d, version);
      const sessionFrom = raw.received.length;
      for (let n = 1 + r.int(40); n > 0 && left > 0; n--) {
        left -= 1;
        const bytes = version === 5 && r.chance(0.2) ? propertyPublish(r, r.pick([`devices/${d.id}/telemetry`, ''])) : r.chance(0.1) ? r.pick(pool.after) : mutate(r, r.pick(pool.after), pool.after, maxPacket);
        if (!(await send(raw, bytes, sessionFrom))) break;
      }
    }
    if (!raw.isClosed) {
      raw.socket.write(generate({ cmd: 'disconnect' }, { protocolVersion: raw.version }));
      await raw.end();
    }
  }
}
