import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type IPublishPacket, type Packet, parser as mqttParser } from 'mqtt-packet';
import { Outbound } from './outbound.js';

function wire(version: 4 | 5, receiveMaximum: number, maximumPacketSize = Number.MAX_SAFE_INTEGER, maxWaiting = 10) {
  let now = 1_000_000;
  const sent: IPublishPacket[] = [];
  const parser = mqttParser({ protocolVersion: version });
  parser.on('packet', (p: Packet) => sent.push(p as IPublishPacket));
  const out = new Outbound(
    version,
    receiveMaximum,
    maximumPacketSize,
    maxWaiting,
    () => now,
    (b) => parser.parse(b),
  );
  return {
    out,
    sent,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

describe('messages to a device (Outbound)', () => {
  it('keeps at most Receive Maximum QoS 1 messages unacknowledged; the rest wait in order', () => {
    const { out, sent } = wire(5, 2);
    for (let i = 0; i < 5; i += 1) assert.equal(out.send(`devices/d/commands/c${i}`, Buffer.from('x'), 1), true);
    assert.deepEqual(
      sent.map((p) => p.topic),
      ['devices/d/commands/c0', 'devices/d/commands/c1'],
    );
    assert.equal(out.waiting, 3);
    assert.equal(out.acknowledged(sent[0]?.messageId ?? 0), true);
    assert.equal(out.acknowledged(sent[0]?.messageId ?? 0), false, 'an id is acknowledged once');
    assert.deepEqual(sent.map((p) => p.topic).slice(2), ['devices/d/commands/c2']);
    assert.equal(out.inflight, 2);
    assert.equal(out.send('devices/d/time/reply', Buffer.from('t'), 0), true, 'QoS 0 is not held back');
    assert.equal(sent.at(-1)?.topic, 'devices/d/time/reply');
  });

  it('drops what expired while it waited, says false when the queue is full, and never reuses an id in flight', () => {
    const { out, sent, advance, now } = wire(5, 1, Number.MAX_SAFE_INTEGER, 2);
    assert.equal(out.send('devices/d/commands/a', Buffer.from('a'), 1, { expiresAt: now() + 60_000 }), true);
    assert.equal(sent[0]?.properties?.messageExpiryInterval, 60);
    assert.equal(out.send('devices/d/commands/b', Buffer.from('b'), 1, { expiresAt: now() + 5_000 }), true);
    assert.equal(out.send('devices/d/commands/c', Buffer.from('c'), 1, { expiresAt: now() + 60_000, responseTopic: 'devices/d/commands/c/result', correlationData: Buffer.from('cmd_1') }), true);
    assert.equal(out.send('devices/d/commands/d', Buffer.from('d'), 1), false, 'queue full');
    advance(10_000);
    out.acknowledged(sent[0]?.messageId ?? 0);
    assert.deepEqual(
      sent.map((p) => p.topic),
      ['devices/d/commands/a', 'devices/d/commands/c'],
      'b expired while waiting',
    );
    assert.equal(sent[1]?.properties?.messageExpiryInterval, 50);
    assert.equal(sent[1]?.properties?.responseTopic, 'devices/d/commands/c/result');
    assert.equal(sent[1]?.properties?.correlationData?.toString(), 'cmd_1');
    assert.notEqual(sent[1]?.messageId, undefined);
  });

  it("does not send what breaks the device's Maximum Packet Size, and sends no properties to 3.1.1 devices", () => {
    const small = wire(5, 10, 64);
    assert.equal(small.out.send('devices/d/commands/big', Buffer.alloc(100), 1), false);
    assert.equal(small.out.inflight, 0, 'its packet id is freed');
    const v4 = wire(4, 10);
    assert.equal(v4.out.send('devices/d/commands/x', Buffer.from('x'), 1, { expiresAt: v4.now() + 1000, correlationData: Buffer.from('c') }), true);
    assert.equal(v4.sent[0]?.properties, undefined);
    assert.equal(v4.out.send('devices/d/commands/y', Buffer.from('y'), 1, { expiresAt: v4.now() - 1 }), false, 'an expired message is not sent on 3.1.1 either');
  });
});
