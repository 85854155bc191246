import assert from 'node:assert/strict';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type Packet, generate, parser as mqttParser } from 'mqtt-packet';
import type { TestServer } from './harness.js';
import type { EnrolledDevice } from './devices.js';
import type { FaultCapture } from './fault-capture.js';

/**
 * Test-only: MQTT written byte by byte, so that a test can send what no client library would (malformed or out-of-spec
 * packets), over a real mTLS socket; the server's answers are read with mqtt-packet's parser.
 */

/** Longest wait for an answer the server owes at once; only a defect makes a test wait this long. */
export const ANSWER_MS = 5000;

// --- bytes on the wire -----------------------------------------------------------------------

/** A Variable Byte Integer (OASIS MQTT 5.0, 1.5.5): seven bits a byte, low first. */
export const varint = (n: number): Buffer => Buffer.from(n < 128 ? [n] : [(n % 128) | 0x80, ...varint(Math.floor(n / 128))]);
/** A Two Byte Integer, big-endian. */
export const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
/** A Four Byte Integer, big-endian. */
export const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
/** A string or binary data with its two-byte length in front; the bytes as given, checked for nothing. */
export const str = (s: string | Buffer) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
/** One byte. */
export const byte = (n: number) => Buffer.from([n]);
/** A fixed header (its first byte as given) and the remaining length in front of `body`. */
export const packet = (first: number, ...body: Buffer[]) => Buffer.concat([Buffer.from([first]), varint(Buffer.concat(body).length), ...body]);
/** An MQTT 5 property (OASIS MQTT 5.0, 2.2.2.2): its identifier, then its value as encoded; `props` makes the list with its length. */
export const prop = (id: number, value: Buffer) => Buffer.concat([Buffer.from([id]), value]);
/** A property list: its length, then the properties. */
export const props = (...p: Buffer[]) => Buffer.concat([varint(Buffer.concat(p).length), ...p]);
/** MQTT 5 property identifiers (OASIS MQTT 5.0, 2.2.2.2). */
export const P = { payloadFormat: 0x01, messageExpiry: 0x02, contentType: 0x03, sessionExpiry: 0x11, requestProblemInfo: 0x17, receiveMaximum: 0x21, topicAlias: 0x23, maximumQoS: 0x24, maximumPacketSize: 0x27 };

/** A CONNECT (clean start, keep-alive off) written by hand, so that its properties can be anything. */
export const rawConnect = (clientId: string, version: 4 | 5, properties: Buffer[] = []) => packet(0x10, str('MQTT'), Buffer.from([version, 0x02]), u16(0), ...(version === 5 ? [props(...properties)] : []), str(clientId));
/** A PUBLISH written by hand: any topic bytes, any properties (MQTT 5). */
export const rawPublish = (version: 4 | 5, topic: string | Buffer, o: { qos?: 0 | 1; messageId?: number; properties?: Buffer[] } = {}) =>
  packet(0x30 | ((o.qos ?? 0) << 1), str(topic), ...(o.qos ? [u16(o.messageId ?? 1)] : []), ...(version === 5 ? [props(...(o.properties ?? []))] : []), Buffer.from('{"id":"h1","type":"ping","ts":1}'));
/** A PINGREQ. */
export const PINGREQ = Buffer.from([0xc0, 0x00]);

// --- reading the server's answers ------------------------------------------------------------

/** A reason or return code as `0x..`, 'none' without one. */
export const hex = (n: number | undefined) => (n === undefined ? 'none' : `0x${n.toString(16).padStart(2, '0')}`);
/** A packet's reason code (MQTT 5) or return code (3.1.1), if it has one. */
export const codeOf = (p: Packet | undefined) => (p && 'reasonCode' in p ? p.reasonCode : p && 'returnCode' in p ? p.returnCode : undefined);
/** Packets as a short line for assertions: `connack(0x00), disconnect(0x81)`, or 'nothing'. */
export const cmds = (ps: readonly Packet[]) => ps.map((p) => `${p.cmd}${codeOf(p) === undefined ? '' : `(${hex(codeOf(p))})`}`).join(', ') || 'nothing';

/** `p`, or a rejection naming `what` if it has not settled within `ms`. */
export async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// --- a device on raw bytes -------------------------------------------------------------------

/** Every RawDevice socket of this process still open, for `closeAll`. */
const sockets = new Set<TLSSocket>();
/** Destroys every RawDevice socket still open (for `t.after`, `t.afterEach`, or a case's `finally`). */
export const closeAll = () => sockets.forEach((s) => s.destroy());

/** One mTLS connection: bytes out; in, mqtt-packet's reading of the server's bytes (and what it could not parse: never allowed). */
export class RawDevice {
  readonly received: Packet[] = [];
  readonly unparsable: string[] = [];
  readonly closed: Promise<'closed'>;
  isClosed = false;
  #wake: (() => void)[] = [];

  constructor(
    readonly socket: TLSSocket,
    readonly version: 4 | 5,
  ) {
    sockets.add(socket);
    const p = mqttParser({ protocolVersion: version });
    p.on('packet', (packet: Packet) => {
      this.received.push(packet);
      this.#notify();
    });
    p.on('error', (err: Error) => this.unparsable.push(err.message));
    socket.on('data', (chunk: Buffer) => p.parse(chunk));
    socket.on('error', () => undefined); // resets and broken pipes once the server has ended are expected
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        sockets.delete(socket);
        resolve('closed');
        this.#notify();
      }),
    );
  }

  /** The first packet from index `from` on that passes `match`; undefined once the socket closed without one. */
  async next(match: (p: Packet) => boolean, from = 0): Promise<Packet | undefined> {
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found || this.isClosed) return found;
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** Ends the connection from this side and waits for the close. */
  async end(): Promise<void> {
    this.socket.end();
    await within(ANSWER_MS, this.closed, 'the close');
  }

  readonly #notify = () => this.#wake.splice(0).forEach((w) => w());
}

/** A connection with its TLS handshake done and nothing sent: the device's certificate, MQTT `version` for reading answers. */
export async function open(s: TestServer, d: EnrolledDevice, version: 4 | 5): Promise<RawDevice> {
  const raw = new RawDevice(tlsConnect({ host: '127.0.0.1', port: s.server.mqttPort, servername: 'localhost', key: d.keyPem, cert: d.certPem, ca: d.caPem }), version);
  await within(ANSWER_MS, new Promise((resolve, reject) => raw.socket.once('secureConnect', resolve).once('error', reject)), 'TLS handshake');
  return raw;
}

/** A connection with a session: a valid CONNECT, CONNACK 0 awaited. */
export async function session(s: TestServer, d: EnrolledDevice, version: 4 | 5): Promise<RawDevice> {
  const raw = await open(s, d, version);
  raw.socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: d.id, clean: true, keepalive: 0 }, { protocolVersion: version }));
  assert.equal(
    codeOf(
      await within(
        ANSWER_MS,
        raw.next((p) => p.cmd === 'connack'),
        'CONNACK',
      ),
    ),
    0,
    `the valid CONNECT is accepted (got: ${cmds(raw.received)})`,
  );
  return raw;
}

/**
 * After hostile bytes on a session: MQTT 5 gets a DISCONNECT with `code`, then the close; 3.1.1 the close. A PINGREQ behind
 * the bytes (`probe`) fails the test at once if the server reads past them and answers it, instead of waiting for no close.
 * A fault in the process while waiting fails the test too.
 */
export async function expectEnded(faults: FaultCapture, raw: RawDevice, bytes: Buffer, code: number, probe = true): Promise<void> {
  const from = raw.received.length;
  const faultsBefore = faults.count;
  raw.socket.write(probe ? Buffer.concat([bytes, PINGREQ]) : bytes);
  const answer = await within(ANSWER_MS, faults.orFault(Promise.race([raw.closed, raw.next((p) => p.cmd === 'pingresp', from).then(() => 'pingresp')])), 'the server ending the session');
  assert.deepEqual(faults.since(faultsBefore), [], 'the packet threw nothing out of the server');
  const got = cmds(raw.received.slice(from));
  assert.notEqual(answer, 'pingresp', `the session went on after the packet: the PINGREQ behind it was answered (got: ${got})`);
  assert.deepEqual(raw.unparsable, [], 'every byte from the server parses');
  assert.equal(got, raw.version === 5 ? `disconnect(${hex(code)})` : 'nothing', 'MQTT 5: a DISCONNECT with the reason and nothing else; 3.1.1: the close alone');
}

/**
 * Before CONNACK: the connection closes without a successful CONNACK; a refusing one may come first (`code` requires it).
 * A fault in the process while waiting fails the test too.
 */
export async function expectRefused(faults: FaultCapture, raw: RawDevice, bytes: Buffer, code?: number): Promise<void> {
  const faultsBefore = faults.count;
  raw.socket.write(bytes);
  const connack = await within(ANSWER_MS, faults.orFault(raw.next((p) => p.cmd === 'connack')), 'the server refusing the connection');
  assert.deepEqual(faults.since(faultsBefore), [], 'the packet threw nothing out of the server');
  assert.ok(connack === undefined || (connack !== 'fault' && codeOf(connack) !== 0), `no successful CONNACK (got: ${cmds(raw.received)})`);
  await within(ANSWER_MS, raw.closed, 'the close after the refusal');
  assert.deepEqual(raw.unparsable, [], 'every byte from the server parses');
  assert.match(cmds(raw.received), code === undefined ? /^(nothing|connack\(0x(?!00)[0-9a-f]{2}\))$/ : new RegExp(`^connack\\(${hex(code)}\\)$`), 'a refusing CONNACK at most');
}
