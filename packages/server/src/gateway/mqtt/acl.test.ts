import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEVICE_TOPICS, type DeviceTopicName, deviceTopic } from '@bulwark/protocol';
import { publishDenial, subscribeDenial } from './acl.js';

describe('device topic ACL', () => {
  it('lets a device publish its device-to-cloud topics', () => {
    for (const t of [
      'devices/d1/telemetry',
      'devices/d1/telemetry/fast',
      'devices/d1/events',
      'devices/d1/health',
      'devices/d1/twin/reported',
      'devices/d1/commands/reboot/result',
      'devices/d1/ota/status',
      'devices/d1/time',
      'devices/d1/logs',
      'devices/d1/certs/rotate',
    ]) {
      assert.equal(publishDenial(t, 'd1'), undefined, t);
    }
  });

  it('refuses publishing outside the tree, on cloud-to-device topics, with wildcards, or with odd encodings', () => {
    const cases: [string, string][] = [
      ['devices/d2/telemetry', 'outside_own_tree'],
      ['devices/d1', 'outside_own_tree'],
      ['devices/d1x/telemetry', 'outside_own_tree'],
      ['Devices/d1/telemetry', 'outside_own_tree'],
      ['/devices/d1/telemetry', 'outside_own_tree'],
      ['devices//d1/telemetry', 'outside_own_tree'],
      ['devices/d1/twin/desired', 'not_a_device_to_cloud_topic'],
      ['devices/d1/commands/reboot', 'not_a_device_to_cloud_topic'],
      ['devices/d1/ota/job', 'not_a_device_to_cloud_topic'],
      ['devices/d1/errors', 'not_a_device_to_cloud_topic'],
      ['devices/d1/telemetry/a/b', 'not_a_device_to_cloud_topic'],
      ['devices/d1/telemetry/', 'empty_level'],
      ['devices/d1/../d2/telemetry', 'not_a_device_to_cloud_topic'],
      ['devices/+/telemetry', 'wildcard_in_publish'],
      ['devices/d1/#', 'wildcard_in_publish'],
      ['$SYS/broker/clients', 'system_topic'],
      ['devices/d1/telemetry\u0000x', 'nul_character'],
      ['devices/d1\u0000/telemetry', 'nul_character'],
      ['devices/d\u0131/telemetry', 'outside_own_tree'],
    ];
    for (const [topic, reason] of cases) assert.equal(publishDenial(topic, 'd1'), reason, JSON.stringify(topic));
  });

  it('lets a device subscribe only inside its own tree', () => {
    for (const f of ['devices/d1/twin/desired', 'devices/d1/commands/+', 'devices/d1/#', 'devices/d1/+/x']) assert.equal(subscribeDenial(f, 'd1'), undefined, f);
    for (const f of ['#', '+/d1/#', 'devices/#', 'devices/+/telemetry', 'devices/+/#', 'devices/d2/#', '$SYS/#', 'devices/d1', '+', 'devices/d1x/#', 'devices//#']) {
      assert.notEqual(subscribeDenial(f, 'd1'), undefined, f);
    }
  });

  it('follows the catalogue: every device-to-cloud topic of DEVICE_TOPICS is publishable, no cloud-to-device one is, all are inside the tree', () => {
    const names = Object.keys(DEVICE_TOPICS) as DeviceTopicName[];
    for (const name of names) {
      const { direction, pattern } = DEVICE_TOPICS[name];
      const topic = deviceTopic('d1', name, { name: 'reboot', stream: 'fast' });
      assert.equal(publishDenial(topic, 'd1'), direction === 'device-to-cloud' ? undefined : 'not_a_device_to_cloud_topic', `${name} (${pattern}): ${topic}`);
      assert.equal(subscribeDenial(deviceTopic('d1', name), 'd1'), undefined, `${name}: a device may subscribe to ${pattern}`);
      assert.equal(publishDenial(deviceTopic('d2', name, { name: 'reboot', stream: 'fast' }), 'd1'), 'outside_own_tree', `${name} of another device`);
    }
    assert.ok(names.some((n) => DEVICE_TOPICS[n].direction === 'cloud-to-device') && names.length >= 16, 'the catalogue lists both directions');
  });
});
