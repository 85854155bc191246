import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { generate } from 'mqtt-packet';
import { type TestServer, startTestServer } from '../../testing/harness.js';
import { type EnrolledDevice, connectDevice, enrollDevice } from '../../testing/devices.js';
import { FaultCapture } from '../../testing/fault-capture.js';
import { type Tally, fuzzLane, rng } from '../../testing/mqtt-fuzz.js';
import { ANSWER_MS, P, byte, closeAll, cmds, expectEnded, expectRefused, hex, open, packet, prop, props, rawConnect, rawPublish, session, str, u16, u32, varint, within } from '../../testing/raw-mqtt.js';

// Hostile bytes from a device with a valid certificate, raw over real mTLS sockets; the server's answers are read with
// mqtt-packet's parser. Throughout: a malformed packet or a protocol error ends the connection (MQTT 5, once CONNACK went
// out, with a DISCONNECT carrying the reason code first), is never acknowledged, throws nothing, leaves no memory behind.

/** Packets the fuzzer sends: small in `npm test`, 10 000 in `npm run test:long`. */
const FUZZ_PACKETS = Number(process.env.BULWARK_TEST_FUZZ_PACKETS ?? 300);
/** The fuzzer's seed: a failure prints it with the input, and the same seed replays the run. */
const FUZZ_SEED = Number(process.env.BULWARK_TEST_FUZZ_SEED ?? 0x5eed);
/** Devices fuzzed at once, a device per lane (lanes never take over each other's session). */
const LANES = 8;
const MiB = 1024 * 1024;

// Faults anywhere in the process (the server runs in it), captured from `before` to `after`: the test that sent the packet
// reports what it caused.
const faults = new FaultCapture();

const REMAINING_200MB = varint(200 * MiB);
const mb = (bytes: number) => (bytes / MiB).toFixed(1);
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Polls what the server has no event for (its side of closed sockets, its counters), with a deadline. */
async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (const t0 = performance.now(); !(await cond()); await tick(5)) {
    if (performance.now() - t0 > ANSWER_MS) throw new Error(`${what}: not within ${ANSWER_MS} ms`);
  }
}

let gc: (() => void) | undefined;
/** Memory after full collections (the runner starts this file without --expose-gc: gc is exposed at run time). */
function settled(): NodeJS.MemoryUsage {
  if (!gc) setFlagsFromString('--expose-gc');
  gc ??= runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage();
}

const metric = async (s: TestServer, re: RegExp) => Number(re.exec((await s.api('GET', '/metrics')).text)?.[1] ?? Number.NaN);
const messagesIn = (s: TestServer) => metric(s, /^bulwark_mqtt_messages_in_total (\d+)/m);

/** Every session gone (the gauge too), /healthz up, and a device that follows the protocol connects and publishes on both levels. */
async function stillServing(s: TestServer, d: EnrolledDevice): Promise<void> {
  await until(() => s.server.mqtt?.sessionCount === 0, 'every session released');
  assert.equal(await metric(s, /^bulwark_mqtt_sessions (\d+)/m), 0, 'bulwark_mqtt_sessions back to 0');
  assert.equal((await s.api('GET', '/healthz')).status, 200);
  for (const protocolVersion of [4, 5] as const) {
    const client = await connectDevice(s, d, { protocolVersion });
    await client.publishAsync(`devices/${d.id}/events`, JSON.stringify({ id: `ok-${performance.now()}`, type: 'ping', ts: 1 }), { qos: 1 }).finally(() => client.endAsync());
  }
  await until(() => s.server.mqtt?.sessionCount === 0, 'the well-behaved sessions released');
}

describe('hostile MQTT packets at the gateway', () => {
  before(() => faults.install());
  after(() => {
    faults.uninstall();
    closeAll();
  });

  it('ends the connection with a reason for each malformed or out-of-spec packet, on MQTT 3.1.1 and 5, and stays up', async (t) => {
    const s = await startTestServer(t);
    t.after(closeAll);
    const d = await enrollDevice(s, await s.tokenFor(s.adminKey), 'hostile-1');
    const { id } = d;
    const own = `devices/${id}/telemetry`;
    const faultsAtStart = faults.count;

    // Before CONNACK: a broken CONNECT gets no session. [what, level, bytes, CONNACK code required]
    const preConnect: [string, 4 | 5, Buffer, number?][] = [
      ['a PUBLISH before CONNECT [MQTT-3.1.0-1]', 4, rawPublish(4, own)],
      ['a remaining length of five bytes [MQTT-1.5.5-1]', 4, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])],
      ['reserved fixed-header flags in CONNECT [MQTT-2.2.2-2]', 4, Buffer.concat([Buffer.from([0x11]), rawConnect(id, 4).subarray(1)])],
      ['the reserved CONNECT flag set [MQTT-3.1.2-3]', 5, Buffer.from(rawConnect(id, 5)).fill(0x03, 9, 10)],
      ['protocol level 6 [MQTT-3.1.2-2]', 5, Buffer.from(rawConnect(id, 5)).fill(6, 8, 9)],
      ['a 200 MB CONNECT announced: refused from its header, before its body', 4, Buffer.concat([Buffer.from([0x10]), REMAINING_200MB, str('MQTT'), Buffer.from([4, 0x02])])],
      ['a 200 MB CONNECT announced: refused from its header, before its body', 5, Buffer.concat([Buffer.from([0x10]), REMAINING_200MB, str('MQTT'), Buffer.from([5, 0x02])]), 0x95],
      ['an unknown property identifier (0x7F) in CONNECT [2.2.2.2: malformed]', 5, rawConnect(id, 5, [prop(0x7f, byte(1))])],
      ['Topic Alias in CONNECT, where it has no place [2.2.2.2: malformed]', 5, rawConnect(id, 5, [prop(P.topicAlias, u16(1))])],
      ['Session Expiry Interval twice in CONNECT [3.1.2.11.2: protocol error]', 5, rawConnect(id, 5, [prop(P.sessionExpiry, u32(10)), prop(P.sessionExpiry, u32(20))])],
      ['Receive Maximum 0 in CONNECT [3.1.2.11.3: protocol error]', 5, rawConnect(id, 5, [prop(P.receiveMaximum, u16(0))])],
      ['Maximum Packet Size 0 in CONNECT [3.1.2.11.4: protocol error]', 5, rawConnect(id, 5, [prop(P.maximumPacketSize, u32(0))])],
      ['Request Problem Information 2 in CONNECT [3.1.2.11.7: protocol error]', 5, rawConnect(id, 5, [prop(P.requestProblemInfo, byte(2))])],
    ];
    for (const [what, version, bytes, code] of preConnect) {
      await t.test(`before CONNACK, v${version}: ${what}${code === undefined ? '' : ` → CONNACK ${hex(code)}`}`, async () => {
        await expectRefused(faults, await open(s, d, version), bytes, code).finally(closeAll);
      });
    }
    await t.test('before CONNACK: a CONNECT cut short, then the device closes: nothing answered', async () => {
      const raw = await open(s, d, 4);
      raw.socket.write(rawConnect(id, 4).subarray(0, 9));
      await raw.end();
      assert.equal(cmds(raw.received), 'nothing');
    });

    // After CONNACK. [what, bytes for the level, MQTT 5 DISCONNECT code]
    type Case = [string, (v: 4 | 5) => Buffer, number];
    const both: Case[] = [
      ['a remaining length of five bytes [MQTT-1.5.5-1]', () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0x81],
      ['reserved flags in SUBSCRIBE (0x80, not 0x82) [MQTT-3.8.1-1]', (v) => Buffer.from(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${id}/commands/#`, qos: 1 }] }, { protocolVersion: v })).fill(0x80, 0, 1), 0x81],
      ['reserved flags in PINGREQ [MQTT-2.2.2-2]', () => Buffer.from([0xc1, 0x00]), 0x81],
      ['reserved flags in PUBREL (0x60, not 0x62) [MQTT-3.6.1-1]', () => Buffer.from([0x60, 0x02, 0x00, 0x01]), 0x81],
      ['a PUBLISH of QoS 3 [MQTT-3.3.1-4]', (v) => Buffer.from(rawPublish(v, own)).fill(0x36, 0, 1), 0x81],
      ['a second CONNECT [MQTT-3.1.0-2]', (v) => rawConnect(id, v), 0x82],
      ['a topic that is not UTF-8 (0xC3 0x28) [MQTT-1.5.3-1, MQTT-1.5.4-1]', (v) => rawPublish(v, Buffer.concat([Buffer.from(`${own}/`), Buffer.from([0xc3, 0x28])]), { qos: 1 }), 0x81],
      ['a topic with U+0000 [MQTT-1.5.3-2, MQTT-1.5.4-2]', (v) => rawPublish(v, `${own}/a\u0000b`, { qos: 1 }), 0x81],
      ['a zero-length topic, without a Topic Alias [MQTT-4.7.3-1; MQTT 5 3.3.2.3.4: protocol error]', (v) => rawPublish(v, '', { qos: 1 }), 0x82],
      ['a SUBSCRIBE without a topic filter [MQTT-3.8.3-3]', (v) => packet(0x82, u16(7), ...(v === 5 ? [props()] : [])), 0x82],
      ['an UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]', (v) => packet(0xa2, u16(8), ...(v === 5 ? [props()] : [])), 0x82],
    ];
    const v5Only: Case[] = [
      ['Topic Alias 0 [MQTT-3.3.2-8]', () => rawPublish(5, own, { properties: [prop(P.topicAlias, u16(0))] }), 0x94],
      ['Topic Alias 17, past the Topic Alias Maximum (16) of the CONNACK [MQTT-3.3.2-9]', () => rawPublish(5, own, { properties: [prop(P.topicAlias, u16(17))] }), 0x94],
      ['an empty topic with a Topic Alias never set [3.3.2.3.4: protocol error]', () => rawPublish(5, '', { properties: [prop(P.topicAlias, u16(3))] }), 0x82],
      ['an unknown property identifier (0x7F) [2.2.2.2: malformed]', () => rawPublish(5, own, { properties: [prop(0x7f, byte(0))] }), 0x81],
      ['property identifier 0 [2.2.2.2: malformed]', () => rawPublish(5, own, { properties: [prop(0x00, byte(0))] }), 0x81],
      ['a property length past the end of the packet [malformed]', () => packet(0x30, str(own), varint(50), prop(P.payloadFormat, byte(1))), 0x81],
      ['Session Expiry Interval, which PUBLISH may not carry [2.2.2.2: malformed]', () => rawPublish(5, own, { qos: 1, properties: [prop(P.sessionExpiry, u32(5))] }), 0x81],
      ['Maximum QoS, which PUBLISH may not carry [2.2.2.2: malformed]', () => rawPublish(5, own, { qos: 1, properties: [prop(P.maximumQoS, byte(1))] }), 0x81],
      ['Topic Alias twice [3.3.2.3.4: protocol error]', () => rawPublish(5, own, { qos: 1, properties: [prop(P.topicAlias, u16(1)), prop(P.topicAlias, u16(2))] }), 0x82],
      ['Message Expiry Interval twice [3.3.2.3.3: protocol error]', () => rawPublish(5, own, { qos: 1, properties: [prop(P.messageExpiry, u32(5)), prop(P.messageExpiry, u32(6))] }), 0x82],
      ['a Content Type that is not UTF-8 [MQTT-1.5.4-1]', () => rawPublish(5, own, { qos: 1, properties: [prop(P.contentType, str(Buffer.from([0xff, 0xfe])))] }), 0x81],
    ];
    const cases = [...([4, 5] as const).flatMap((v) => both.map((c) => [v, c] as const)), ...v5Only.map((c) => [5, c] as const)];
    for (const [version, [what, bytes, code]] of cases) {
      await t.test(`after CONNACK, v${version}: ${what} → ${version === 5 ? `DISCONNECT ${hex(code)}` : 'close'}`, async () => {
        await expectEnded(faults, await session(s, d, version), bytes(version), code).finally(closeAll);
      });
    }

    for (const version of [4, 5] as const) {
      await t.test(`after CONNACK, v${version}: a 200 MB PUBLISH announced is refused from its fixed header, no byte of its body sent → ${version === 5 ? 'DISCONNECT 0x95' : 'close'}`, async () => {
        await expectEnded(faults, await session(s, d, version), Buffer.concat([Buffer.from([0x32]), REMAINING_200MB]), 0x95, false);
      });
      for (const [what, cut] of [
        ['a PUBLISH cut short', (b: Buffer) => b.subarray(0, b.length - 5)],
        ['a remaining length cut short', (b: Buffer) => b.subarray(0, 2).fill(0x80, 1)],
      ] as const) {
        await t.test(`after CONNACK, v${version}: ${what}, then the device closes: nothing answered, nothing taken in`, async () => {
          const before = await messagesIn(s);
          const raw = await session(s, d, version);
          raw.socket.write(cut(rawPublish(version, own, { qos: 1 })));
          await raw.end();
          assert.equal(cmds(raw.received), 'connack(0x00)');
          assert.equal(await messagesIn(s), before);
        });
      }
    }

    await stillServing(s, d);
    assert.deepEqual(faults.unreported(faultsAtStart), [], 'no uncaught exception or unhandled rejection outside the cases that report theirs');
  });

  it('keeps memory bounded against a device that subscribes without end or stops reading', async (t) => {
    const s = await startTestServer(t, { config: { mqtt: { publishRatePerSecond: 100_000, publishBurst: 1_000_000 } } });
    t.after(closeAll);
    const d = await enrollDevice(s, await s.tokenFor(s.adminKey), 'greedy-1');
    await stillServing(s, d);

    t.afterEach(closeAll);
    await t.test('4000 distinct subscriptions of 8 KB each (32 MB) do not all stay in memory', async () => {
      const raw = await session(s, d, 4);
      const before = settled().heapUsed;
      for (let i = 1; i <= 4000; i++) raw.socket.write(generate({ cmd: 'subscribe', messageId: i, subscriptions: [{ topic: `devices/${d.id}/${i}-${'f'.repeat(8000)}`, qos: 0 }] }));
      await within(
        30_000,
        raw.next((p) => p.cmd === 'suback' && p.messageId === 4000),
        'the last SUBACK (or the close)',
      );
      const grown = settled().heapUsed - before;
      assert.ok(grown < 8 * MiB, `the server's heap grew ${mb(grown)} MB with the subscriptions of one session`);
    });

    await t.test('a device that stops reading its socket: 320 echoes of its own 64 KB publishes do not pile up in the server', async () => {
      const raw = await session(s, d, 4);
      raw.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${d.id}/events`, qos: 0 }] }));
      await within(
        ANSWER_MS,
        raw.next((p) => p.cmd === 'suback'),
        'SUBACK',
      );
      raw.socket.pause();
      const [before, inBefore] = [settled().arrayBuffers, await messagesIn(s)];
      const publish = generate({ cmd: 'publish', topic: `devices/${d.id}/events`, payload: Buffer.alloc(65_536, 0x61), qos: 0, retain: false, dup: false });
      for (let i = 0; i < 320; i++) raw.socket.write(publish);
      // Nothing signals that the server has read them all, or that it stopped reading (a right answer too): its counter is polled until it stands still for 2 s.
      for (let last = -1, still = performance.now(); !raw.isClosed && performance.now() - still < 2000; await tick(20)) {
        const n = (await messagesIn(s)) - inBefore;
        if (n >= 320) break;
        if (n !== last) [last, still] = [n, performance.now()];
      }
      const grown = settled().arrayBuffers - before;
      assert.ok(grown < 8 * MiB, `${mb(grown)} MB of buffers held for a device that does not read (what it wrote is one shared 64 KB buffer)`);
    });
    await stillServing(s, d);
  });

  it(`survives ${FUZZ_PACKETS} fuzzed packets (seed ${FUZZ_SEED}): every connection ends, MQTT 5 ones with a reason; the server stays up, its memory flat`, async (t) => {
    const s = await startTestServer(t);
    t.after(closeAll);
    const admin = await s.tokenFor(s.adminKey);
    const devices = await Promise.all(Array.from({ length: LANES }, (_, i) => enrollDevice(s, admin, `fuzz-${i}`)));
    const calm = await enrollDevice(s, admin, 'calm-1');
    const faultsAtStart = faults.count;
    const tally: Tally = { packets: 0, connections: 0, codes: new Map(), problems: [] };
    const run = { tally, faults };
    const lanes = devices.map((d, i) => ({ d, r: rng(FUZZ_SEED + i), count: Math.floor(FUZZ_PACKETS / LANES) + (i < FUZZ_PACKETS % LANES ? 1 : 0) }));
    // Two halves, memory measured after each with every session gone: a leak per packet or connection grows with the count,
    // so the second half must leave next to nothing on the heap (8 MB: 1.6 KB a packet at 10 000; run-to-run noise is about
    // 1 MB). RSS gets a loose bound: freed TLS buffers (64 KiB a socket) stay in the allocator, V8 keeps the heap it grew.
    await stillServing(s, calm);
    const m0 = settled();
    const t0 = performance.now();
    const phase = async (share: (count: number) => number) => {
      await Promise.all(lanes.map((l) => fuzzLane(s, l.d, l.r, share(l.count), run)));
      await stillServing(s, calm);
      return settled();
    };
    const m1 = await phase((c) => Math.floor(c / 2));
    const m2 = await phase((c) => c - Math.floor(c / 2));
    console.log(
      `fuzz: ${tally.packets} packets, seed ${FUZZ_SEED}, ${tally.connections} connections, ${((performance.now() - t0) / 1000).toFixed(1)} s; MQTT 5 DISCONNECT codes ${JSON.stringify(Object.fromEntries([...tally.codes].sort()))};` +
        ` heap ${mb(m0.heapUsed)} → ${mb(m1.heapUsed)} → ${mb(m2.heapUsed)} MB, rss ${mb(m0.rss)} → ${mb(m1.rss)} → ${mb(m2.rss)} MB`,
    );
    assert.equal(tally.packets, FUZZ_PACKETS);
    assert.deepEqual(tally.problems.slice(0, 10), [], `${tally.problems.length} inputs the server mishandled (replay: BULWARK_TEST_FUZZ_SEED=${FUZZ_SEED})`);
    assert.deepEqual(faults.unreported(faultsAtStart), [], 'no uncaught exception or unhandled rejection');
    assert.ok(m2.heapUsed - m1.heapUsed < 8 * MiB, `the second half left ${mb(m2.heapUsed - m1.heapUsed)} MB of heap behind`);
    assert.ok(m2.rss - m0.rss < 128 * MiB, `RSS grew ${mb(m2.rss - m0.rss)} MB`);
  });
});
