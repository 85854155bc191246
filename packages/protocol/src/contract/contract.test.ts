import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEVICE_MESSAGE_LIMITS, HealthReport } from './device-messages.js';
import { POSTURE_LIMITS } from './device-posture.js';
import { isMessage, messageProblem, parseMessage } from './check.js';
import { DEVICE_MESSAGES, type DeviceMessageName, MESSAGE_EXAMPLES } from './messages.js';
import { DEVICE_TOPICS, type DeviceTopicName, deviceTopic, deviceTopics, matchDeviceTopic } from './topics.js';
import { TimeRequest } from './service-messages.js';

const TOPIC_NAMES = Object.keys(DEVICE_TOPICS) as DeviceTopicName[];
const MESSAGE_NAMES = Object.keys(DEVICE_MESSAGES) as DeviceMessageName[];
const PARAMS = { name: 'reboot', stream: 'fast' };

/** Messages each refused for one reason, named by the case. */
const BROKEN: readonly [DeviceMessageName, string, unknown][] = [
  ['TelemetryEnvelope', 'no id', { schema: 'env@1', data: {} }],
  ['TelemetryEnvelope', 'data not an object', { id: 'm1', schema: 'env@1', data: 5 }],
  ['TelemetryEnvelope', 'negative seq', { id: 'm1', schema: 'env@1', data: {}, seq: -1 }],
  ['TelemetryEnvelope', 'id over 64 characters', { id: 'x'.repeat(65), schema: 'env@1', data: {} }],
  ['DeviceEvent', 'empty type', { id: 'e1', type: '', ts: 1 }],
  ['DeviceEvent', 'unknown field', { id: 'e1', type: 'boot', ts: 1, extra: true }],
  ['HealthReport', 'battery over 100', { ts: 1, boot: 'b', uptimeS: 1, batteryPct: 101 }],
  ['HealthReport', 'firmware without version', { ts: 1, boot: 'b', uptimeS: 1, firmware: { securityVersion: 1 } }],
  ['HealthReport', 'fractional byte count', { ts: 1, boot: 'b', uptimeS: 1, memUsedBytes: 1.5 }],
  ['HealthReport', 'posture with an unknown field', { ts: 1, boot: 'b', uptimeS: 1, posture: { telnet: true } }],
  ['HealthReport', 'listening port over 65535', { ts: 1, boot: 'b', uptimeS: 1, posture: { listening: [{ proto: 'tcp', port: 70000, address: '0.0.0.0' }] } }],
  ['HealthReport', 'listening socket of another protocol', { ts: 1, boot: 'b', uptimeS: 1, posture: { listening: [{ proto: 'sctp', port: 1, address: '::' }] } }],
  ['HealthReport', `more than ${POSTURE_LIMITS.listeningMaxItems} listening sockets`, { ts: 1, boot: 'b', uptimeS: 1, posture: { listening: Array.from({ length: POSTURE_LIMITS.listeningMaxItems + 1 }, (_, i) => ({ proto: 'udp', port: i, address: '::' })) } }],
  ['HealthReport', 'debug port without its service', { ts: 1, boot: 'b', uptimeS: 1, posture: { debugPorts: [{ proto: 'tcp', port: 23, address: '0.0.0.0' }] } }],
  ['HealthReport', 'boot verified a string', { ts: 1, boot: 'b', uptimeS: 1, posture: { boot: { slot: 'a', verified: 'yes' } } }],
  ['HealthReport', 'boot slot c', { ts: 1, boot: 'b', uptimeS: 1, posture: { boot: { slot: 'c', verified: true } } }],
  ['HealthReport', 'unknown root login value', { ts: 1, boot: 'b', uptimeS: 1, posture: { ssh: { rootLogin: 'maybe' } } }],
  ['HealthReport', 'serial console without enabled', { ts: 1, boot: 'b', uptimeS: 1, posture: { serialConsole: { consoles: ['ttyS0'] } } }],
  ['TwinReported', 'unknown status', { version: 1, status: 'maybe', config: {}, ts: 1 }],
  ['TwinReported', 'config an array', { version: 1, status: 'applied', config: [], ts: 1 }],
  ['TwinDesired', 'negative version', { version: -1, config: {}, ts: 1 }],
  ['CommandRequest', 'control character in id', { id: 'a\nb', params: {}, issuedAt: 1 }],
  ['CommandRequest', 'no params', { id: 'c1', issuedAt: 1 }],
  ['CommandResult', 'no ts', { id: 'c1', status: 'succeeded' }],
  ['CommandResult', 'empty id', { id: '', status: 'succeeded', ts: 1 }],
  ['CommandResult', `reason over ${DEVICE_MESSAGE_LIMITS.reasonMaxLength} characters`, { id: 'c1', status: 'failed', reason: 'r'.repeat(257), ts: 1 }],
  ['OtaJob', 'url of another artifact host', { ...MESSAGE_EXAMPLES.OtaJob, url: 'https://evil.example/fw_12' }],
  ['OtaJob', 'attempt 0', { ...MESSAGE_EXAMPLES.OtaJob, attempt: 0 }],
  ['OtaCancel', 'cancel false', { jobId: 'job_9', cancel: false, reason: 'x' }],
  ['OtaJobMessage', 'neither a job nor a cancel', { jobId: 'job_9' }],
  ['OtaStatus', 'unknown state', { jobId: 'job_9', state: 'flashing', ts: 1 }],
  ['LogBatch', `more than ${DEVICE_MESSAGE_LIMITS.logBatchMaxEntries} entries`, { entries: Array.from({ length: 201 }, () => ({ ts: 1, level: 'info', msg: 'm' })) }],
  ['LogBatch', 'unknown level', { entries: [{ ts: 1, level: 'fatal', msg: 'm' }] }],
  ['TimeRequest', 't0 a string', { t0: '1' }],
  ['TimeRequest', 't0 not finite (1e999)', JSON.parse('{"t0": 1e999}')],
  ['TimeReply', 'no t2', { t0: 1, t1: 2 }],
  ['RotationRequest', 'csr not a string', { csr: 42 }],
  ['RotationResult', 'certificate without chain', { serial: '1', certificate: 'PEM', notAfter: 1 }],
  ['ErrorNotice', 'problems not a list', { reason: 'invalid', problems: 'bad', topic: 'devices/d1/health' }],
];

describe('device contract catalogue', () => {
  it('declares every topic as levels under devices/{id}/, without wildcards, each pattern once', () => {
    for (const name of TOPIC_NAMES) {
      const { pattern } = DEVICE_TOPICS[name];
      for (const level of pattern.split('/')) assert.match(level, /^([a-z]+|\{[a-z]+\})$/, `${name}: level "${level}" of ${pattern}`);
    }
    const patterns = TOPIC_NAMES.map((n) => DEVICE_TOPICS[n].pattern);
    assert.equal(new Set(patterns).size, patterns.length, 'a pattern is listed twice');
  });

  it('matches each topic of a device back to its own entry, with its placeholders, and nothing else', () => {
    for (const name of TOPIC_NAMES) {
      const topic = deviceTopic('d1', name, PARAMS);
      assert.ok(topic.startsWith('devices/d1/'), topic);
      const match = matchDeviceTopic(topic.slice('devices/d1/'.length));
      assert.equal(match?.name, name, topic);
      for (const [k, v] of Object.entries(match.params)) assert.equal(v, PARAMS[k as keyof typeof PARAMS], `${topic}: ${k}`);
    }
    for (const suffix of ['', 'commands', 'commands//result', 'telemetry/', 'telemetry/a/b', 'twin', 'ota/job/x', 'Health', 'errors/x']) {
      assert.equal(matchDeviceTopic(suffix), undefined, JSON.stringify(suffix));
    }
  });

  it('keeps the topic builders of deviceTopics(id) on the catalogue', () => {
    const t = deviceTopics('d1');
    assert.equal(t.root, 'devices/d1');
    assert.equal(t.telemetry(), 'devices/d1/telemetry');
    assert.equal(t.telemetry('fast'), 'devices/d1/telemetry/fast');
    assert.equal(t.command('+'), 'devices/d1/commands/+');
    assert.equal(t.commandResult('reboot'), 'devices/d1/commands/reboot/result');
    assert.equal(t.timeReply, 'devices/d1/time/reply');
    assert.equal(t.certsRotateResult, 'devices/d1/certs/rotate/result');
    assert.equal(deviceTopic('d1', 'commandResult'), 'devices/d1/commands/+/result', 'without params: an MQTT filter');
    const built = Object.values(t).filter((v): v is string => typeof v === 'string' && v !== t.root);
    for (const topic of built) assert.ok(matchDeviceTopic(topic.slice('devices/d1/'.length)), `${topic} is not in DEVICE_TOPICS`);
  });

  it('names an existing message for every topic, sends requests device to cloud and answers cloud to device', () => {
    for (const name of TOPIC_NAMES) {
      const { message, direction, qos, description } = DEVICE_TOPICS[name];
      assert.ok(message in DEVICE_MESSAGES, `${name}: no message ${message}`);
      assert.ok(qos.length > 0 && qos.every((q) => q === 0 || q === 1), `${name}: QoS 0 or 1`);
      assert.ok(description.length > 10 && !description.includes('\n'), `${name}: a one-line description`);
      if (name === 'timeReply' || name === 'certsRotateResult' || name === 'errors') assert.equal(direction, 'cloud-to-device', name);
      if (name === 'time' || name === 'certsRotate' || name.startsWith('telemetry')) assert.equal(direction, 'device-to-cloud', name);
    }
  });

  it("validates the example of every message, within its topic's size bound", () => {
    for (const name of MESSAGE_NAMES) {
      const example = MESSAGE_EXAMPLES[name];
      assert.ok(isMessage(DEVICE_MESSAGES[name], example), `${name}: its example does not validate`);
      assert.deepEqual(parseMessage(DEVICE_MESSAGES[name], Buffer.from(JSON.stringify(example))), example, `${name}: parsed back from JSON`);
    }
    for (const name of TOPIC_NAMES) {
      const { message, maxBytes } = DEVICE_TOPICS[name] as { message: DeviceMessageName; maxBytes?: number };
      if (maxBytes !== undefined) assert.ok(Buffer.byteLength(JSON.stringify(MESSAGE_EXAMPLES[message])) <= maxBytes, `${name}: the example is over ${maxBytes} bytes`);
    }
  });

  it(`refuses ${BROKEN.length} broken messages, each for its own fault`, () => {
    for (const [name, why, value] of BROKEN) assert.equal(isMessage(DEVICE_MESSAGES[name], value), false, `${name} with ${why} was accepted`);
  });

  it('keeps a health report without posture valid (older agents), and names the path of a bad posture field', () => {
    assert.ok(isMessage(HealthReport, { ts: 1, boot: 'b', uptimeS: 1 }));
    assert.ok(isMessage(HealthReport, { ts: 1, boot: 'b', uptimeS: 1, posture: {} }), 'every part of the posture is optional');
    const problem = messageProblem(HealthReport, {
      ts: 1,
      boot: 'b',
      uptimeS: 1,
      posture: {
        listening: [
          { proto: 'tcp', port: 22, address: '::' },
          { proto: 'tcp', port: -1, address: '::' },
        ],
      },
    });
    assert.equal(problem?.path, '/posture/listening/1/port', JSON.stringify(problem));
    assert.equal(messageProblem(HealthReport, MESSAGE_EXAMPLES.HealthReport), undefined);
  });

  it('parses only JSON payloads holding the message', () => {
    assert.deepEqual(parseMessage(TimeRequest, '{"t0": 5, "note": "extra fields are allowed here"}'), { t0: 5, note: 'extra fields are allowed here' });
    for (const payload of ['', '{', 'null', '[{"t0":1}]', '"t0"', '{"t0": null}']) assert.equal(parseMessage(TimeRequest, payload), undefined, payload);
  });
});
