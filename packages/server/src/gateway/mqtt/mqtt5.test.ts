import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import { generate, parser as mqttParser } from 'mqtt-packet';
import { closed, connect, connectDevice, type EnrolledDevice, tlsOptions } from '../../testing/devices.js';
import type { TestServer } from '../../testing/harness.js';
import { env, metric, setup } from '../../testing/telemetry.js';

const V5: IClientOptions = { protocolVersion: 5 };

/** The next packet of one kind the client receives, as it came over the wire. */
function nextPacket<T extends Packet>(client: MqttClient, cmd: Packet['cmd'], match: (p: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const on = (p: Packet) => {
      if (p.cmd !== cmd || !match(p as T)) return;
      client.removeListener('packetreceive', on);
      resolve(p as T);
    };
    client.on('packetreceive', on);
  });
}

/** Connects and resolves with the client and its CONNACK. */
function connectWithConnack(t: TestContext, options: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(options);
    t.after(() => client.end(true));
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', reject);
  });
}

/** Publishes at QoS 1 and resolves with the PUBACK's reason code and string (0 when accepted). */
async function pubackOf(client: MqttClient, topic: string, payload: string, options: Parameters<MqttClient['publish']>[2] = {}): Promise<{ code: number; reason: string | undefined }> {
  const ack = nextPacket<Packet & { reasonCode?: number; properties?: { reasonString?: string } }>(client, 'puback');
  client.publish(topic, payload, { qos: 1, ...options }, () => undefined);
  const p = await ack;
  return { code: p.reasonCode ?? 0, reason: p.properties?.reasonString };
}

/** Key, certificate and CA of a device as files, for the mosquitto clients. */
function files(t: TestContext, d: EnrolledDevice) {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-mqtt5-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, pem] of [
    ['key.pem', d.keyPem],
    ['crt.pem', d.certPem],
    ['ca.pem', d.caPem],
  ] as const)
    writeFileSync(join(dir, name), pem, { mode: 0o600 });
  return ['-h', 'localhost', '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'crt.pem'), '--key', join(dir, 'key.pem'), '-V', 'mqttv5'];
}

/** Runs a mosquitto client; resolves with its exit code and output (both exit 0 on a refused publish: read stderr). */
function mosquitto(cmd: 'mosquitto_pub' | 'mosquitto_sub', s: TestServer, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, ['-p', String(s.server.mqttPort), ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : err ? -1 : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('MQTT 5 at the gateway', () => {
  it('answers mqtt.js with reason codes: client id not valid, not authorized (publish, subscribe), payload format invalid for a dead-lettered reading', async (t) => {
    const { s, device, client: v4 } = await setup(t, { id: 'v5-1' });
    await v4.endAsync();
    await assert.rejects(connect(tlsOptions(s, device, 'someone-else', V5)), (err: Error & { code?: number }) => err.code === 0x85);
    const c = await connectDevice(s, device, V5);
    t.after(() => c.end(true));

    assert.deepEqual(await pubackOf(c, 'devices/v5-1/telemetry', env('ok-1', { temp_c: 21 })), { code: 0, reason: undefined });
    const denied = await pubackOf(c, 'devices/other/telemetry', 'x');
    assert.equal(denied.code, 0x87);
    assert.match(denied.reason ?? '', /outside_own_tree/);
    const invalid = await pubackOf(c, 'devices/v5-1/telemetry', env('bad-1', { temp_c: 'hot' }));
    assert.equal(invalid.code, 0x99);
    assert.match(invalid.reason ?? '', /^dead_lettered: schema_violation; \/temp_c expected /);
    assert.equal(c.connected, true, 'refusals answered in PUBACKs, not by a disconnect');

    // Outside the tree: not authorized; deeper than mqtt.maxTopicLevels: topic filter invalid.
    const suback = nextPacket<Packet & { granted: number[] }>(c, 'suback');
    c.subscribe({ 'devices/other/#': { qos: 1 }, 'devices/v5-1/a/b/c/d/e/f/g': { qos: 1 }, 'devices/v5-1/#': { qos: 1 } }, () => undefined);
    assert.deepEqual((await suback).granted, [0x87, 0x8f, 1]);
    const rows = await s.server.store.telemetry.query({ deviceId: 'v5-1', limit: 10 });
    assert.deepEqual(
      rows.map((r) => r.msgId),
      ['ok-1'],
    );
    assert.equal(await metric(s, /bulwark_mqtt_connects_total\{version="5"\} (\d+)/), 1);
    assert.equal(await metric(s, /bulwark_mqtt_connect_refused_total\{reason="client_id_mismatch"\} (\d+)/), 1);
  });

  it('answers mosquitto_pub and mosquitto_sub -V mqttv5 with the same reason codes', async (t) => {
    const { s, device, client: v4 } = await setup(t, { id: 'mq5-1' });
    await v4.endAsync();
    const tls = files(t, device);
    const wrongId = await mosquitto('mosquitto_pub', s, [...tls, '-i', 'mq5-2', '-q', '1', '-t', 'devices/mq5-2/telemetry', '-m', 'x']);
    assert.match(wrongId.out, /client identifier not valid/i, wrongId.out);
    const deniedPub = await mosquitto('mosquitto_pub', s, [...tls, '-i', 'mq5-1', '-q', '1', '-t', 'devices/mq5-2/telemetry', '-m', 'x']);
    assert.match(deniedPub.out, /not authori[sz]ed/i, deniedPub.out);
    const invalid = await mosquitto('mosquitto_pub', s, [...tls, '-i', 'mq5-1', '-q', '1', '-t', 'devices/mq5-1/telemetry', '-m', '{"not":"an envelope"}']);
    assert.match(invalid.out, /payload format invalid/i, invalid.out);
    const deniedSub = await mosquitto('mosquitto_sub', s, [...tls, '-i', 'mq5-1', '-q', '1', '-t', 'devices/mq5-2/#', '-C', '1', '-W', '3']);
    assert.match(deniedSub.out, /not authori[sz]ed|denied/i, deniedSub.out);
    const ok = await mosquitto('mosquitto_pub', s, [...tls, '-i', 'mq5-1', '-q', '1', '-t', 'devices/mq5-1/telemetry', '-m', env('mq-ok', { temp_c: 5 })]);
    assert.equal(ok.code, 0, ok.out);
    assert.doesNotMatch(ok.out, /failed|error/i);
    assert.deepEqual(
      (await s.server.store.telemetry.query({ deviceId: 'mq5-1', limit: 10 })).map((r) => r.msgId),
      ['mq-ok'],
    );
  });

  it('sends commands with message expiry, response topic and correlation data; an answer by correlation data completes the command', async (t) => {
    const { s, admin, device, client: v4 } = await setup(t, { id: 'cmd5-1' });
    await v4.endAsync();
    const c = await connectDevice(s, device, V5);
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/cmd5-1/commands/+', { qos: 1 });
    const got = nextPacket<IPublishPacket>(c, 'publish', (p) => p.topic === 'devices/cmd5-1/commands/reboot');
    const issued = await s.api('POST', '/api/v1/devices/cmd5-1/commands/reboot', { token: admin, body: { params: {}, ttlS: 120 } });
    assert.equal(issued.status, 201, issued.text);
    const request = await got;
    const props = request.properties ?? {};
    assert.equal(props.responseTopic, 'devices/cmd5-1/commands/reboot/result');
    assert.equal(props.correlationData?.toString(), issued.body.id);
    assert.ok((props.messageExpiryInterval ?? 0) > 100 && (props.messageExpiryInterval ?? 0) <= 120, `expiry ${props.messageExpiryInterval}`);
    // The answer carries no id in its body: the correlation data names the command.
    const answer = await pubackOf(c, props.responseTopic ?? '', JSON.stringify({ status: 'succeeded', ts: Date.now() }), { properties: { correlationData: props.correlationData as Buffer } });
    assert.equal(answer.code, 0);
    assert.equal((await s.api('GET', `/api/v1/devices/cmd5-1/commands/${issued.body.id}`, { token: admin })).body.status, 'succeeded');
    const mismatch = await pubackOf(c, props.responseTopic ?? '', JSON.stringify({ id: 'cmd_other', status: 'failed', ts: Date.now() }), { properties: { correlationData: props.correlationData as Buffer } });
    assert.equal(mismatch.code, 0x99);
    assert.match(mismatch.reason ?? '', /correlation_mismatch/);
  });

  it('announces its limits in CONNACK, resolves topic aliases, and keeps a session with an expiry interval', async (t) => {
    const { s, admin, device, client: v4 } = await setup(t, { id: 'sess5-1', config: { mqtt: { receiveMaximum: 7 } } });
    await v4.endAsync();
    const sessionOptions = { ...V5, clean: false, properties: { sessionExpiryInterval: 600 } };
    const { client: probe, connack: first } = await connectWithConnack(t, tlsOptions(s, device, 'sess5-1', sessionOptions));
    await probe.endAsync();
    assert.equal(first.properties?.receiveMaximum, 7);
    assert.equal(first.properties?.maximumQoS, 1);
    assert.equal(first.properties?.retainAvailable, false);
    assert.ok(Number(first.properties?.maximumPacketSize) > 262_144);
    assert.equal(first.properties?.topicAliasMaximum, 16);
    assert.equal(first.sessionPresent, false);

    const c = await connectDevice(s, device, sessionOptions);
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/sess5-1/commands/+', { qos: 1 });
    // A topic alias set once, then used with an empty topic.
    assert.equal((await pubackOf(c, 'devices/sess5-1/telemetry', env('al-1', { temp_c: 1 }), { properties: { topicAlias: 3 } })).code, 0);
    assert.equal((await pubackOf(c, '', env('al-2', { temp_c: 2 }), { properties: { topicAlias: 3 } })).code, 0);
    assert.deepEqual((await s.server.store.telemetry.query({ deviceId: 'sess5-1', limit: 10 })).map((r) => r.msgId).sort(), ['al-1', 'al-2']);
    await c.endAsync();

    // Back without a clean start: the session (its subscription) is there, and a command issued meanwhile arrives without a new SUBSCRIBE.
    const issued = await s.api('POST', '/api/v1/devices/sess5-1/commands/ping', { token: admin, body: { params: {} } });
    assert.equal(issued.status, 201);
    const { client: again, connack } = await connectWithConnack(t, tlsOptions(s, device, 'sess5-1', { ...sessionOptions, resubscribe: false }));
    const command = nextPacket<IPublishPacket>(again, 'publish', (p) => p.topic === 'devices/sess5-1/commands/ping');
    assert.equal(connack.sessionPresent, true);
    const cmd = await command;
    assert.equal(cmd.properties?.correlationData?.toString(), issued.body.id);
  });

  it('refuses a retained publish with DISCONNECT 0x9A and a QoS 0 publish outside the tree with 0x87, counted', async (t) => {
    const { s, device, client: v4 } = await setup(t, { id: 'ret5-1' });
    await v4.endAsync();
    for (const [topic, options, code] of [
      ['devices/ret5-1/telemetry', { qos: 0, retain: true }, 0x9a],
      ['devices/x/telemetry', { qos: 0 }, 0x87],
    ] as const) {
      const c = await connectDevice(s, device, V5);
      t.after(() => c.end(true));
      const disconnect = nextPacket<Packet & { reasonCode?: number }>(c, 'disconnect');
      const gone = closed(c);
      c.publish(topic, 'x', options);
      assert.equal((await disconnect).reasonCode, code);
      await gone;
    }
    assert.equal(await metric(s, /bulwark_mqtt_acl_denied_total\{kind="publish",reason="outside_own_tree"\} (\d+)/), 1);
  });

  it('keeps 3.1.1 and 5 devices side by side on one listener', async (t) => {
    const { s, admin, client: old } = await setup(t, { id: 'v4-1' });
    const d5 = await (await import('../../testing/devices.js')).enrollDevice(s, admin, 'v5-2');
    const c5 = await connectDevice(s, d5, V5);
    t.after(() => c5.end(true));
    await old.publishAsync('devices/v4-1/telemetry', env('a', { temp_c: 1 }), { qos: 1 });
    await c5.publishAsync('devices/v5-2/telemetry', env('b', { temp_c: 1 }), { qos: 1 });
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'v4-1', limit: 5 })).length, 1);
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'v5-2', limit: 5 })).length, 1);
    assert.equal(await metric(s, /bulwark_mqtt_connects_total\{version="4"\} (\d+)/), 1);
    assert.equal(await metric(s, /bulwark_mqtt_connects_total\{version="5"\} (\d+)/), 1);
  });
});

describe('MQTT 5 Receive Maximum, from a raw client', () => {
  it('disconnects a device that sends more unacknowledged QoS 1 publishes than announced, with 0x93', async (t) => {
    const { s, device, client: v4 } = await setup(t, { id: 'rm5-1', config: { mqtt: { receiveMaximum: 2, publishRatePerSecond: 1, publishBurst: 1 } } });
    await v4.endAsync();
    const socket = tlsConnect({ host: '127.0.0.1', port: s.server.mqttPort, servername: 'localhost', key: device.keyPem, cert: device.certPem, ca: device.caPem });
    t.after(() => socket.destroy());
    const packets: Packet[] = [];
    const parser = mqttParser({ protocolVersion: 5 });
    parser.on('packet', (p: Packet) => packets.push(p));
    socket.on('data', (b: Buffer) => parser.parse(b));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(generate({ cmd: 'connect', protocolVersion: 5, clientId: 'rm5-1', clean: true, keepalive: 30, protocolId: 'MQTT' }, { protocolVersion: 5 }));
    // The first publish takes the only token; the next two wait for tokens, unacknowledged: three under way, two allowed.
    for (let i = 1; i <= 3; i += 1) {
      socket.write(generate({ cmd: 'publish', topic: 'devices/rm5-1/telemetry', payload: Buffer.from(env(`rm-${i}`, { temp_c: 1 })), qos: 1, messageId: i, retain: false, dup: false }, { protocolVersion: 5 }));
    }
    await ended;
    assert.equal(packets[0]?.cmd, 'connack');
    const disconnect = packets.find((p) => p.cmd === 'disconnect') as (Packet & { reasonCode?: number }) | undefined;
    assert.equal(disconnect?.reasonCode, 0x93, JSON.stringify(packets));
    assert.equal(await metric(s, /bulwark_mqtt_disconnects_total\{reason="receive_maximum_exceeded"\} (\d+)/), 1);
  });
});
