import { DEVICE_TOPIC_ROOT, matchDeviceTopicLevels } from '@bulwark/protocol';

/**
 * Per-device least privilege on the topic tree (DESIGN.md §4). A device publishes only to
 * the device-to-cloud topics of its own tree (those of DEVICE_TOPICS in @bulwark/protocol),
 * and subscribes only inside its own tree. Pure functions: the gateway asks, these answer
 * with a reason when the answer is no.
 */
export type AclDenial = 'outside_own_tree' | 'not_a_device_to_cloud_topic' | 'wildcard_in_publish' | 'system_topic' | 'empty_level' | 'nul_character';

function common(topic: string, deviceId: string): { levels: string[] } | AclDenial {
  if (topic.includes('\u0000')) return 'nul_character';
  if (topic.startsWith('$')) return 'system_topic';
  const levels = topic.split('/');
  if (levels[0] !== DEVICE_TOPIC_ROOT || levels[1] !== deviceId || levels.length < 3) return 'outside_own_tree';
  if (levels.some((l) => l.length === 0)) return 'empty_level';
  return { levels };
}

export function publishDenial(topic: string, deviceId: string): AclDenial | undefined {
  if (/[+#]/.test(topic)) return 'wildcard_in_publish';
  const c = common(topic, deviceId);
  if (typeof c === 'string') return c;
  return matchDeviceTopicLevels(c.levels, 2)?.topic.direction === 'device-to-cloud' ? undefined : 'not_a_device_to_cloud_topic';
}

/** A subscription filter is allowed when every topic it can match lies in the device's tree. */
export function subscribeDenial(filter: string, deviceId: string): AclDenial | undefined {
  const c = common(filter, deviceId);
  return typeof c === 'string' ? c : undefined;
}
