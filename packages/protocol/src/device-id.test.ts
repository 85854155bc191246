import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceIdProblem, deviceTopics, isDeviceId } from './index.js';

describe('device ids', () => {
  it('accepts plain serial-like ids', () => {
    for (const id of ['sensor-001', 'GW.12:ab', 'a', 'x'.repeat(128)]) assert.equal(isDeviceId(id), true, id);
  });

  it('refuses MQTT separators, wildcards, NUL, whitespace and $ prefixes', () => {
    for (const id of ['a/b', 'a+', '#', 'a\u0000b', 'a b', '$SYS', 'a$']) {
      assert.equal(deviceIdProblem(id), 'forbidden_character', JSON.stringify(id));
    }
    assert.equal(deviceIdProblem(''), 'empty');
    assert.equal(deviceIdProblem('x'.repeat(129)), 'too_long');
    assert.equal(deviceIdProblem('-lead'), 'bad_first_character');
  });

  it('builds every topic inside the device tree', () => {
    const t = deviceTopics('d1');
    assert.equal(t.telemetry(), 'devices/d1/telemetry');
    assert.equal(t.telemetry('fast'), 'devices/d1/telemetry/fast');
    assert.equal(t.commandResult('reboot'), 'devices/d1/commands/reboot/result');
  });
});
